//! Temp files and folders with unique names (from the `tempfile` crate), removed when dropped, so
//! tests running at once never read or truncate each other's files.

use std::ffi::OsStr;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use tempfile::TempDir;

/// A file alone in a fresh folder: the folder and everything in it go when this is dropped.
/// Dereferences to the file's path, so it is passed wherever a path is.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    dir: TempDir,
}

impl TempFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder it is alone in; files written beside it are removed with it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Deref for TempFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<OsStr> for TempFile {
    fn as_ref(&self) -> &OsStr {
        self.path.as_os_str()
    }
}

/// A fresh, uniquely named folder whose name starts with `customersim-{label}-`.
pub fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("customersim-{label}-"))
        .tempdir()
        .expect("create a temp folder")
}

/// Writes `text` to a file called `name` in a fresh folder of its own.
pub fn temp_file(name: &str, text: &str) -> TempFile {
    let dir = temp_dir("test");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write the temp file");
    TempFile { path, dir }
}

/// A fresh folder that other users can use too: Mosquitto started as root drops its privileges
/// to the `mosquitto` user, which must read its config and write its persistence file there.
pub fn shared_temp_dir(label: &str) -> TempDir {
    let dir = temp_dir(label);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("open the temp folder to every user");
    dir
}

/// Writes a file that every user can read (see [`shared_temp_dir`]) and returns its path.
pub fn write_shared(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the shared file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .expect("make the shared file readable");
    path
}
