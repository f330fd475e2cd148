//! The FUSE calls, each a few lines over [`crate::model::Model`]. Regular files and directories
//! only: hard links, symlinks and device nodes are refused (`EPERM`), extended attributes are
//! not supported (`ENOSYS`).

use crate::model::{Inode, Kind, Model};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Only this layer changes the tree, so the kernel may cache what it was told.
const TTL: Duration = Duration::from_secs(1);

pub struct PowerFs {
    pub model: Arc<Mutex<Model>>,
}

impl PowerFs {
    fn m(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn err(e: i32) -> Errno {
    Errno::from_i32(e)
}

fn attr(id: u64, i: &Inode, req_uid: u32, req_gid: u32) -> FileAttr {
    let (kind, size) = match i.kind {
        Kind::File => (FileType::RegularFile, i.data.len() as u64),
        Kind::Dir => (FileType::Directory, 0),
    };
    FileAttr {
        ino: INodeNo(id),
        size,
        blocks: size.div_ceil(512),
        atime: i.mtime,
        mtime: i.mtime,
        ctime: i.mtime,
        crtime: i.mtime,
        kind,
        perm: i.perm,
        nlink: if i.kind == Kind::Dir { 2 } else { 1 },
        uid: req_uid,
        gid: req_gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl PowerFs {
    fn entry(&self, req: &Request, r: Result<u64, i32>, reply: ReplyEntry) {
        let m = self.m();
        match r.and_then(|id| Ok((id, m.get(id)?))) {
            Ok((id, i)) => reply.entry(&TTL, &attr(id, i, req.uid(), req.gid()), Generation(0)),
            Err(e) => reply.error(err(e)),
        }
    }

    fn attr_reply(&self, req: &Request, id: u64, reply: ReplyAttr) {
        let m = self.m();
        match m.get(id) {
            Ok(i) => reply.attr(&TTL, &attr(id, i, req.uid(), req.gid())),
            Err(e) => reply.error(err(e)),
        }
    }
}

fn empty(r: Result<(), i32>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(err(e)),
    }
}

fn perm(mode: u32, umask: u32) -> u16 {
    (mode & !umask & 0o7777) as u16
}

impl fuser::Filesystem for PowerFs {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.m().lookup(parent.0, name);
        self.entry(req, r, reply);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.attr_reply(req, ino.0, reply);
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = {
            let mut m = self.m();
            let sized = size.map_or(Ok(()), |s| m.truncate(ino.0, s));
            sized.and_then(|()| mode.map_or(Ok(()), |md| m.set_perm(ino.0, perm(md, 0))))
        };
        match r {
            Ok(()) => self.attr_reply(req, ino.0, reply),
            Err(e) => reply.error(err(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let r = self
            .m()
            .create(parent.0, name, Kind::File, perm(mode, umask));
        self.entry(req, r, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .m()
            .create(parent.0, name, Kind::Dir, perm(mode, umask));
        self.entry(req, r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.m().remove(parent.0, name, false), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.m().remove(parent.0, name, true), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        empty(
            self.m()
                .rename(parent.0, name, newparent.0, newname, noreplace),
            reply,
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.m().read(ino.0, offset, size) {
            Ok(bytes) => reply.data(bytes),
            Err(e) => reply.error(err(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.m().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(err(e)),
        }
    }

    /// `close` makes nothing durable.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.m().sync_file(ino.0), reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let m = self.m();
        let dir = match m.get(ino.0) {
            Ok(d) if d.kind == Kind::Dir => d,
            Ok(_) => return reply.error(Errno::ENOTDIR),
            Err(e) => return reply.error(err(e)),
        };
        let dots = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (dir.parent, FileType::Directory, OsStr::new("..")),
        ];
        let named = dir.entries.iter().map(|(name, id)| {
            let kind = match m.get(*id).map(|i| i.kind) {
                Ok(Kind::Dir) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (*id, kind, name.as_os_str())
        });
        for (i, (id, kind, name)) in dots
            .into_iter()
            .chain(named)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(id), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(self.m().sync_dir(ino.0), reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut m = self.m();
        let r = m.create(parent.0, name, Kind::File, perm(mode, umask));
        match r.and_then(|id| Ok((id, m.get(id)?))) {
            Ok((id, i)) => reply.created(
                &TTL,
                &attr(id, i, req.uid(), req.gid()),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(err(e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }
}
