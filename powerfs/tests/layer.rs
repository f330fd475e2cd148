//! Real mounts: a POSIX conformance set run on a plain directory and through the layer, and
//! cuts that must keep exactly what was synced. Needs /dev/fuse (and root, or fusermount3).

use powerfs::Layer;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Dirs {
    _tmp: tempfile::TempDir,
    backing: PathBuf,
    mnt: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (backing, mnt) = (tmp.path().join("disk"), tmp.path().join("mnt"));
    Dirs {
        _tmp: tmp,
        backing,
        mnt,
    }
}

fn mount(d: &Dirs) -> Layer {
    Layer::mount(&d.backing, &d.mnt, "powerfs-test").expect("mount powerfs (needs /dev/fuse)")
}

fn sync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

/// Create, write, pwrite, truncate, rename, fsync of file and directory, read back; returns
/// what a listing and the files hold, so two directories can be compared.
fn conformance(root: &Path) -> Vec<(String, Vec<u8>)> {
    let a = root.join("a.txt");
    let mut f = File::create(&a).unwrap();
    f.write_all(b"hello world").unwrap();
    f.write_all_at(b"HELLO", 0).unwrap();
    f.write_all_at(b"!", 20).unwrap(); // a hole: zeros in between
    f.sync_data().unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"HELLO world\0\0\0\0\0\0\0\0\0!");
    f.set_len(5).unwrap();
    f.sync_all().unwrap();
    assert_eq!(fs::metadata(&a).unwrap().len(), 5);
    let mut r = File::open(&a).unwrap();
    r.seek(SeekFrom::Start(1)).unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "ELLO");
    fs::create_dir(root.join("sub")).unwrap();
    fs::write(root.join("sub/b.tmp"), b"bee").unwrap();
    fs::rename(root.join("sub/b.tmp"), root.join("sub/b")).unwrap();
    fs::rename(root.join("sub/b"), root.join("b")).unwrap();
    fs::write(root.join("c"), b"old").unwrap();
    fs::rename(root.join("b"), root.join("c")).unwrap(); // replaces c
    sync_dir(root);
    sync_dir(&root.join("sub"));
    assert!(fs::remove_dir(root.join("nope")).is_err());
    fs::write(root.join("sub/gone"), b"x").unwrap();
    fs::remove_file(root.join("sub/gone")).unwrap();
    let mut append = OpenOptions::new()
        .append(true)
        .open(root.join("c"))
        .unwrap();
    append.write_all(b"+").unwrap();
    append.sync_all().unwrap();
    assert_eq!(
        fs::rename(root.join("sub"), root.join("sub/inner"))
            .unwrap_err()
            .raw_os_error(),
        Some(22), // EINVAL: a directory cannot move into itself
    );
    listing(root)
}

fn listing(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
                out.push((rel + "/", vec![]));
            } else {
                out.push((rel, fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_conformance_set_gives_the_same_files_through_the_layer_as_on_a_plain_directory() {
    let plain = tempfile::tempdir().unwrap();
    let expected = conformance(plain.path());
    assert_eq!(
        expected,
        vec![
            ("a.txt".into(), b"HELLO".to_vec()),
            ("c".into(), b"bee+".to_vec()),
            ("sub/".into(), vec![]),
        ]
    );
    let d = dirs();
    let layer = mount(&d);
    assert_eq!(conformance(&d.mnt), expected, "live view");
    // Everything was synced: a cut keeps it all, in the backing directory and after remount.
    layer.cut().unwrap();
    assert_eq!(listing(&d.backing), expected, "backing after the cut");
    let layer = mount(&d);
    assert_eq!(listing(&d.mnt), expected, "remounted");
    layer.stop().unwrap();
}

#[test]
fn a_cut_keeps_synced_data_and_drops_the_rest() {
    let d = dirs();
    let layer = mount(&d);
    let m = &d.mnt;
    let mut f = File::create(m.join("log")).unwrap();
    f.write_all(b"one\n").unwrap();
    f.sync_data().unwrap();
    sync_dir(m); // the name "log" is durable from here
    f.write_all(b"two\n").unwrap(); // never synced
    fs::create_dir(m.join("d")).unwrap();
    sync_dir(m);
    fs::write(m.join("new"), b"never named durably").unwrap();
    File::open(m.join("new")).unwrap().sync_all().unwrap(); // data synced, name not
    fs::write(m.join("d/empty"), b"data never synced").unwrap();
    sync_dir(&m.join("d")); // name synced, data not: an empty file
    fs::rename(m.join("log"), m.join("log.old")).unwrap(); // rename not synced
    drop(f);
    layer.cut().unwrap();
    let layer = mount(&d);
    assert_eq!(
        listing(m),
        vec![
            ("d/".into(), vec![]),
            ("d/empty".into(), vec![]),
            ("log".into(), b"one\n".to_vec()),
        ]
    );
    // A clean stop keeps everything, the unsynced writes too.
    fs::write(m.join("late"), b"kept").unwrap();
    layer.stop().unwrap();
    let layer = mount(&d);
    assert_eq!(fs::read(m.join("late")).unwrap(), b"kept");
    layer.cut().unwrap();
}

/// Run as a child process by the next test: writes, syncs some, writes more, says so, waits.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os("POWERFS_WRITER_DIR") else {
        return; // only meaningful as the child of the test below
    };
    let dir = PathBuf::from(dir);
    let mut f = File::create(dir.join("data")).unwrap();
    for i in 0..100 {
        writeln!(f, "synced {i}").unwrap();
    }
    f.sync_data().unwrap();
    sync_dir(&dir);
    for i in 0..100 {
        writeln!(f, "lost {i}").unwrap();
    }
    f.write_all_at(b"LOST", 0).unwrap();
    fs::write(dir.join("unsynced-file"), b"lost").unwrap();
    println!("written");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn a_killed_writer_cut_after_its_sync_comes_back_with_exactly_the_synced_data() {
    let d = dirs();
    let layer = mount(&d);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("POWERFS_WRITER_DIR", &d.mnt)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("written") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the writer ended early"
        );
    }
    // Before the cut the writer's unsynced data is there, as after a SIGKILL.
    child.kill().unwrap();
    child.wait().unwrap();
    let live = fs::read_to_string(d.mnt.join("data")).unwrap();
    assert!(
        live.starts_with("LOST") && live.contains("lost 99"),
        "{live}"
    );
    layer.cut().unwrap();
    let layer = mount(&d);
    let want: String = (0..100).map(|i| format!("synced {i}\n")).collect();
    assert_eq!(fs::read_to_string(d.mnt.join("data")).unwrap(), want);
    assert!(!d.mnt.join("unsynced-file").exists());
    layer.stop().unwrap();
}

#[test]
fn a_mount_left_behind_is_found_and_removed_by_its_source() {
    let d = dirs();
    let layer = Layer::mount(&d.backing, &d.mnt, "powerfs-test-left").unwrap();
    let ours = |s: &str| s == "powerfs-test-left";
    assert!(powerfs::mounts()
        .iter()
        .any(|(p, s)| ours(s) && p.ends_with("mnt") && p.starts_with(d._tmp.path())));
    std::mem::forget(layer); // as if the process had been killed: nobody unmounts it
    let removed = powerfs::unmount_where(ours);
    assert!(removed.iter().any(|p| p == &d.mnt), "{removed:?}");
    assert!(!powerfs::mounts().iter().any(|(p, _)| p == &d.mnt));
}
