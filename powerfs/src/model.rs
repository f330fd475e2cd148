//! The layer's state: the volatile view every call sees (in memory, like a page cache that never
//! writes back on its own) and the durable copy in the backing directory, which only the sync
//! calls update. A cut is dropping this state; the backing directory is then what survived.
//!
//! Every inode has at most one name (no hard links), so "still linked" is one flag. Where an
//! inode's durable copy lives is a [`Loc`]: the root, a durable entry of a durable directory, or
//! the orphan area (synced data whose name is not durable yet; emptied at every mount, as fsck
//! would reclaim it).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where, in the backing directory, synced data that has no durable name yet is kept.
pub const ORPHANS: &str = ".powerfs-orphans";

pub const ROOT: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    Root,
    Entry { parent: u64, name: OsString },
    Orphan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug)]
pub struct Inode {
    pub kind: Kind,
    pub perm: u16,
    pub mtime: SystemTime,
    /// The volatile view.
    pub data: Vec<u8>,
    pub entries: BTreeMap<OsString, u64>,
    pub parent: u64,
    pub linked: bool,
    /// The durable copy: where it is, which of its entries are durable (directories), and from
    /// which offset the volatile data differs from it (files).
    pub at: Option<Loc>,
    pub durable_entries: BTreeMap<OsString, u64>,
    pub dirty_from: Option<u64>,
}

impl Inode {
    fn new(kind: Kind, perm: u16, parent: u64) -> Inode {
        Inode {
            kind,
            perm,
            mtime: SystemTime::now(),
            data: Vec::new(),
            entries: BTreeMap::new(),
            parent,
            linked: true,
            at: None,
            durable_entries: BTreeMap::new(),
            dirty_from: None,
        }
    }

    fn mark_dirty(&mut self, from: u64) {
        self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
        self.mtime = SystemTime::now();
    }
}

pub type Res<T> = Result<T, i32>;

fn eio(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[derive(Debug)]
pub struct Model {
    backing: PathBuf,
    inodes: BTreeMap<u64, Inode>,
    next: u64,
}

impl Model {
    /// Loads the backing directory as both views (what is there is durable), and empties the
    /// orphan area.
    pub fn load(backing: &Path) -> io::Result<Model> {
        let orphans = backing.join(ORPHANS);
        if orphans.exists() {
            fs::remove_dir_all(&orphans)?;
        }
        let mut root = Inode::new(Kind::Dir, 0o755, ROOT);
        root.at = Some(Loc::Root);
        let mut m = Model {
            backing: backing.to_path_buf(),
            inodes: BTreeMap::from([(ROOT, root)]),
            next: ROOT + 1,
        };
        m.load_dir(ROOT, backing)?;
        Ok(m)
    }

    fn load_dir(&mut self, dir: u64, path: &Path) -> io::Result<()> {
        for e in fs::read_dir(path)? {
            let e = e?;
            let meta = e.metadata()?;
            let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
            let mut ino = Inode::new(kind, (meta.permissions().mode() & 0o7777) as u16, dir);
            ino.at = Some(Loc::Entry {
                parent: dir,
                name: e.file_name(),
            });
            if let Ok(t) = meta.modified() {
                ino.mtime = t;
            }
            if kind == Kind::File {
                ino.data = fs::read(e.path())?;
            }
            let id = self.add(ino);
            self.get_mut(dir).entries.insert(e.file_name(), id);
            self.get_mut(dir).durable_entries.insert(e.file_name(), id);
            if kind == Kind::Dir {
                self.load_dir(id, &e.path())?;
            }
        }
        Ok(())
    }

    fn add(&mut self, ino: Inode) -> u64 {
        let id = self.next;
        self.next += 1;
        self.inodes.insert(id, ino);
        id
    }

    pub fn get(&self, id: u64) -> Res<&Inode> {
        self.inodes.get(&id).ok_or(libc::ENOENT)
    }

    fn get_mut(&mut self, id: u64) -> &mut Inode {
        self.inodes.get_mut(&id).expect("inode exists")
    }

    fn dir(&self, id: u64) -> Res<&Inode> {
        match self.get(id)? {
            i if i.kind == Kind::Dir => Ok(i),
            _ => Err(libc::ENOTDIR),
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Res<u64> {
        if name == ORPHANS && parent == ROOT {
            return Err(libc::ENOENT);
        }
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or(libc::ENOENT)
    }

    /// A new empty file or directory named `name` in `parent` (volatile until `parent` is synced).
    pub fn create(&mut self, parent: u64, name: &OsStr, kind: Kind, perm: u16) -> Res<u64> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        if parent == ROOT && name == ORPHANS {
            return Err(libc::EPERM);
        }
        let id = self.add(Inode::new(kind, perm, parent));
        let p = self.get_mut(parent);
        p.entries.insert(name.to_owned(), id);
        p.mtime = SystemTime::now();
        Ok(id)
    }

    pub fn read(&self, id: u64, offset: u64, size: u32) -> Res<&[u8]> {
        let data = &self.get(id)?.data;
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(size as usize).min(data.len());
        Ok(&data[start..end])
    }

    pub fn write(&mut self, id: u64, offset: u64, bytes: &[u8]) -> Res<()> {
        if self.get(id)?.kind != Kind::File {
            return Err(libc::EISDIR);
        }
        let f = self.get_mut(id);
        let end = offset as usize + bytes.len();
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[offset as usize..end].copy_from_slice(bytes);
        f.mark_dirty(offset);
        Ok(())
    }

    pub fn truncate(&mut self, id: u64, size: u64) -> Res<()> {
        if self.get(id)?.kind != Kind::File {
            return Err(libc::EISDIR);
        }
        let f = self.get_mut(id);
        let from = (f.data.len() as u64).min(size);
        f.data.resize(size as usize, 0);
        f.mark_dirty(from);
        Ok(())
    }

    pub fn set_perm(&mut self, id: u64, perm: u16) -> Res<()> {
        self.get(id)?;
        self.get_mut(id).perm = perm;
        Ok(())
    }

    /// Unlinks `name` (a file, or with `dir` an empty directory).
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Res<()> {
        let id = self.lookup(parent, name)?;
        let ino = self.get(id)?;
        match (dir, ino.kind) {
            (true, Kind::File) => return Err(libc::ENOTDIR),
            (false, Kind::Dir) => return Err(libc::EISDIR),
            (true, Kind::Dir) if !ino.entries.is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        self.get_mut(parent).entries.remove(name);
        self.get_mut(id).linked = false;
        Ok(())
    }

    /// Renames; an existing target of the same kind (an empty directory) is replaced unless
    /// `noreplace`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        to_parent: u64,
        to_name: &OsStr,
        noreplace: bool,
    ) -> Res<()> {
        let id = self.lookup(parent, name)?;
        self.dir(to_parent)?;
        if to_parent == ROOT && to_name == ORPHANS {
            return Err(libc::EPERM);
        }
        if self.is_within(to_parent, id) {
            return Err(libc::EINVAL);
        }
        if let Ok(old) = self.lookup(to_parent, to_name) {
            if old == id {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            let dir = self.get(old)?.kind == Kind::Dir;
            if dir != (self.get(id)?.kind == Kind::Dir) {
                return Err(if dir { libc::EISDIR } else { libc::ENOTDIR });
            }
            self.remove(to_parent, to_name, dir)?;
        }
        self.get_mut(parent).entries.remove(name);
        self.get_mut(to_parent)
            .entries
            .insert(to_name.to_owned(), id);
        self.get_mut(id).parent = to_parent;
        Ok(())
    }

    /// Whether `id` is `ancestor` or inside it (volatile view).
    fn is_within(&self, mut id: u64, ancestor: u64) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.inodes.get(&id) {
                Some(i) if id != ROOT => id = i.parent,
                _ => return false,
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Making things durable.

    fn path(&self, loc: &Loc, id: u64) -> PathBuf {
        match loc {
            Loc::Root => self.backing.clone(),
            Loc::Orphan => self.backing.join(ORPHANS).join(id.to_string()),
            Loc::Entry { parent, name } => {
                let p = &self.inodes[parent];
                self.path(
                    p.at.as_ref()
                        .expect("a durable entry's directory is durable"),
                    *parent,
                )
                .join(name)
            }
        }
    }

    /// The backing path of `id`'s durable copy, making one in the orphan area if it has none.
    fn durable_path(&mut self, id: u64) -> io::Result<PathBuf> {
        if let Some(loc) = self.get(id).expect("inode exists").at.clone() {
            return Ok(self.path(&loc, id));
        }
        let path = self.path(&Loc::Orphan, id);
        fs::create_dir_all(self.backing.join(ORPHANS))?;
        let kind = self.inodes[&id].kind;
        make_empty(&path, kind)?;
        let f = self.get_mut(id);
        f.at = Some(Loc::Orphan);
        f.dirty_from = Some(0);
        Ok(path)
    }

    /// fsync/fdatasync of a file: its volatile data becomes its durable data.
    pub fn sync_file(&mut self, id: u64) -> Res<()> {
        if self.get(id)?.kind == Kind::Dir {
            return self.sync_dir(id);
        }
        let path = self.durable_path(id).map_err(eio)?;
        let f = &self.inodes[&id];
        if let Some(from) = f.dirty_from {
            let out = OpenOptions::new().write(true).open(&path).map_err(eio)?;
            out.set_len(f.data.len() as u64).map_err(eio)?;
            let from = (from as usize).min(f.data.len());
            out.write_all_at(&f.data[from..], from as u64)
                .map_err(eio)?;
            out.sync_data().map_err(eio)?;
            self.get_mut(id).dirty_from = None;
        }
        Ok(())
    }

    /// fsync of a directory: its volatile entries become its durable entries. A name that went
    /// away is removed from the backing directory, or, if its inode still has a name elsewhere,
    /// moved to the orphan area; a new name gets the inode's durable copy (moved from wherever
    /// it was), or an empty file or directory if it has none.
    pub fn sync_dir(&mut self, id: u64) -> Res<()> {
        self.dir(id)?;
        let here = self.durable_path(id).map_err(eio)?;
        let (entries, durable) = {
            let d = &self.inodes[&id];
            (d.entries.clone(), d.durable_entries.clone())
        };
        for (name, old) in &durable {
            if entries.get(name) != Some(old) {
                self.detach(id, name, *old).map_err(eio)?;
            }
        }
        for (name, new) in &entries {
            if durable.get(name) != Some(new) {
                self.attach(id, &here, name, *new).map_err(eio)?;
            }
        }
        File::open(&here).and_then(|d| d.sync_all()).map_err(eio)
    }

    fn detach(&mut self, dir: u64, name: &OsStr, id: u64) -> io::Result<()> {
        let path = self.path(
            &Loc::Entry {
                parent: dir,
                name: name.to_owned(),
            },
            id,
        );
        self.get_mut(dir).durable_entries.remove(name);
        if self.inodes[&id].linked {
            fs::create_dir_all(self.backing.join(ORPHANS))?;
            fs::rename(&path, self.path(&Loc::Orphan, id))?;
            self.get_mut(id).at = Some(Loc::Orphan);
            return Ok(());
        }
        match self.inodes[&id].kind {
            Kind::File => fs::remove_file(&path)?,
            Kind::Dir => fs::remove_dir_all(&path)?,
        }
        self.forget_durable(id);
        Ok(())
    }

    /// `id` and everything durably inside it no longer have a durable copy.
    fn forget_durable(&mut self, id: u64) {
        let f = self.get_mut(id);
        f.at = None;
        f.dirty_from = Some(0);
        let children: Vec<u64> = std::mem::take(&mut f.durable_entries)
            .into_values()
            .collect();
        for c in children {
            self.forget_durable(c);
        }
    }

    fn attach(&mut self, dir: u64, here: &Path, name: &OsStr, id: u64) -> io::Result<()> {
        let target = here.join(name);
        match self.inodes[&id].at.clone() {
            Some(loc) => {
                fs::rename(self.path(&loc, id), &target)?;
                if let Loc::Entry { parent, name } = loc {
                    self.get_mut(parent).durable_entries.remove(&name);
                }
            }
            None => {
                let kind = self.inodes[&id].kind;
                make_empty(&target, kind)?;
                self.get_mut(id).dirty_from = Some(0);
            }
        }
        let perm = self.inodes[&id].perm;
        let _ = fs::set_permissions(&target, fs::Permissions::from_mode(perm.into()));
        self.get_mut(id).at = Some(Loc::Entry {
            parent: dir,
            name: name.to_owned(),
        });
        self.get_mut(dir)
            .durable_entries
            .insert(name.to_owned(), id);
        Ok(())
    }

    /// Makes everything durable, as a clean shutdown would: each directory from the root down,
    /// then every file.
    pub fn sync_all(&mut self) -> Res<()> {
        let mut dirs = vec![ROOT];
        while let Some(d) = dirs.pop() {
            self.sync_dir(d)?;
            let children: Vec<u64> = self.inodes[&d].entries.values().copied().collect();
            for c in children {
                match self.inodes[&c].kind {
                    Kind::Dir => dirs.push(c),
                    Kind::File => self.sync_file(c)?,
                }
            }
        }
        Ok(())
    }
}

fn make_empty(path: &Path, kind: Kind) -> io::Result<()> {
    match kind {
        Kind::File => File::create(path).map(drop),
        Kind::Dir => fs::create_dir(path),
    }
}
