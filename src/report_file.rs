//! Where `run --report FILE` puts the report (and `run --junit FILE` the thresholds' JUnit XML): a
//! temporary file beside FILE, created before the run and renamed onto FILE once the report is
//! written, so FILE is only ever replaced whole by a finished report.
//!
//! What that guards against (issue 20, finding 13): a run that fails leaves an existing FILE as it
//! was (the temporary file goes away); a symlink at FILE is replaced, not followed; a FIFO, a
//! device (`/dev/stdout`), a directory, the pipeline file itself or the file stdout or stderr
//! write to are refused before the run (exit code 2), so the report never waits forever for a
//! reader, never lands in the event stream and never replaces the config.

use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// The `--report` (or `--junit`) file, checked and with its temporary file open, from before the
/// run starts.
pub struct ReportFile {
    /// The flag that named the file, for errors.
    flag: &'static str,
    path: PathBuf,
    temporary: NamedTempFile,
}

/// Which file a path or descriptor is: device and inode.
type FileId = (u64, u64);

fn id(metadata: &Metadata) -> FileId {
    (metadata.dev(), metadata.ino())
}

impl ReportFile {
    /// Checks `path` (see the module documentation) and creates the temporary file beside it;
    /// `config` is the pipeline file, if any. The error names `--report` and the path.
    pub fn create(path: PathBuf, config: Option<&Path>) -> Result<ReportFile, String> {
        ReportFile::create_for("--report", path, config)
    }

    /// As [`ReportFile::create`], for the file of another flag (`--junit`), which errors name.
    pub fn create_for(
        flag: &'static str,
        path: PathBuf,
        config: Option<&Path>,
    ) -> Result<ReportFile, String> {
        let refuse = |why: String| format!("{flag} {}: {why}", path.display());
        check(&path, config).map_err(refuse)?;
        let name = path
            .file_name()
            .ok_or_else(|| refuse("not a file name".into()))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // 0666 less the umask, as a file `File::create` makes.
        let temporary = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|error| refuse(format!("cannot write the report there: {error}")))?;
        Ok(ReportFile {
            flag,
            path,
            temporary,
        })
    }

    /// The path given to the flag.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to the temporary file and renames it onto the report's path.
    pub fn write(mut self, text: &str) -> Result<(), String> {
        let flag = self.flag;
        let fail =
            |error: io::Error| format!("{flag} {}: cannot write: {error}", self.path.display());
        let file = self.temporary.as_file_mut();
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        let ReportFile {
            path, temporary, ..
        } = self;
        temporary
            .persist(&path)
            .map(drop)
            .map_err(|error| format!("{flag} {}: cannot write: {}", path.display(), error.error))
    }
}

/// Why `path` cannot take the report, if it cannot.
fn check(path: &Path, config: Option<&Path>) -> Result<(), String> {
    let own = match std::fs::symlink_metadata(path) {
        Ok(own) => own,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(format!("cannot write the report there: {error}")),
    };
    // What a reader of `path` gets: the file itself, or the one a symlink leads to (None: a
    // dangling symlink, which the rename replaces).
    let target = if own.file_type().is_symlink() {
        std::fs::metadata(path).ok()
    } else {
        Some(own.clone())
    };
    if let Some(target) = &target {
        if target.is_dir() {
            return Err("is a directory: give the path of a file".into());
        }
        if !target.is_file() {
            return Err(
                "not a regular file (a FIFO, socket or device such as /dev/stdout): the report is written to a regular file only"
                    .into(),
            );
        }
    }
    if let Some(config) = config {
        let config_ids: Vec<FileId> =
            [std::fs::symlink_metadata(config), std::fs::metadata(config)]
                .into_iter()
                .flatten()
                .map(|metadata| id(&metadata))
                .collect();
        if config_ids.contains(&id(&own)) {
            return Err("is the pipeline file (--config): the report would replace it".into());
        }
    }
    if let Some(target) = &target {
        for (name, stream) in [
            ("stdout", standard_stream(io::stdout().as_fd())),
            ("stderr", standard_stream(io::stderr().as_fd())),
        ] {
            if stream.is_some_and(|stream| stream == id(target)) {
                return Err(format!(
                    "is the file {name} writes to: the report would be mixed into it or replace it"
                ));
            }
        }
    }
    Ok(())
}

/// The file a standard stream writes to, if it can be told.
fn standard_stream(fd: std::os::fd::BorrowedFd<'_>) -> Option<FileId> {
    let file = File::from(fd.try_clone_to_owned().ok()?);
    file.metadata().ok().map(|metadata| id(&metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn replaces_the_file_whole_and_only_when_written() {
        let dir = dir();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "previous").unwrap();
        let report = ReportFile::create(path.clone(), None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous");
        drop(report); // a failed run
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no leftovers"
        );
        ReportFile::create(path.clone(), None)
            .unwrap()
            .write("{}")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let dir = dir();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("report.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        ReportFile::create(link.clone(), None)
            .unwrap()
            .write("{}")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "{}");
    }

    #[test]
    fn refuses_directories_devices_and_the_config() {
        let dir = dir();
        let error = ReportFile::create(dir.path().to_path_buf(), None)
            .err()
            .unwrap();
        assert!(
            error.contains("--report") && error.contains("directory"),
            "{error}"
        );
        let error = ReportFile::create("/dev/null".into(), None).err().unwrap();
        assert!(error.contains("not a regular file"), "{error}");
        let error = ReportFile::create_for("--junit", "/dev/null".into(), None)
            .err()
            .unwrap();
        assert!(error.starts_with("--junit /dev/null: "), "{error}");
        let config = dir.path().join("pipeline.yaml");
        std::fs::write(&config, "sinks: []").unwrap();
        let error = ReportFile::create(config.clone(), Some(&config))
            .err()
            .unwrap();
        assert!(error.contains("pipeline file"), "{error}");
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&config, &link).unwrap();
        let error = ReportFile::create(config.clone(), Some(&link))
            .err()
            .unwrap();
        assert!(error.contains("pipeline file"), "{error}");
    }
}
