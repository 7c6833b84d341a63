//! PHS_READY_FILE: where `phs serve` says, once its listeners are open,
//! which addresses they are bound to. With port 0 in ADMIN_ADDR or
//! CAPTURE_ADDR the kernel picks the port, and this file is how a
//! supervisor, a script or a test learns it without racing anyone for a
//! free port or parsing the log.
//!
//! The file is `KEY=value` lines named after the settings (ADMIN_ADDR,
//! CAPTURE_ADDR when this instance captures), so a shell can source it.
//! It appears whole (written beside, then renamed), is deleted at start so
//! a previous run's addresses are never read as this one's, and is deleted
//! again when the server stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The ready file of one `phs serve` run; dropping it deletes the file.
pub struct ReadyFile {
    path: PathBuf,
}

impl ReadyFile {
    /// Clears what an earlier run may have left at `path`.
    pub fn claim(path: &Path) -> std::io::Result<ReadyFile> {
        remove(path)?;
        Ok(ReadyFile { path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publishes the bound addresses.
    pub fn write(&self, admin: SocketAddr, capture: Option<SocketAddr>) -> std::io::Result<()> {
        let mut text = format!("ADMIN_ADDR={admin}\n");
        if let Some(capture) = capture {
            text.push_str(&format!("CAPTURE_ADDR={capture}\n"));
        }
        // Readers poll for the file: a rename means they see all of it or none.
        let mut partial = self.path.clone().into_os_string();
        partial.push(format!(".{}.tmp", std::process::id()));
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &self.path)
    }
}

impl Drop for ReadyFile {
    fn drop(&mut self) {
        if let Err(err) = remove(&self.path) {
            tracing::warn!(path = %self.path.display(), %err, "cannot remove PHS_READY_FILE");
        }
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_both_listeners_and_goes_away_with_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready");
        std::fs::write(&path, "ADMIN_ADDR=127.0.0.1:1\n").unwrap();
        let ready = ReadyFile::claim(&path).unwrap();
        assert!(!path.exists(), "a previous run's file is cleared at start");
        ready.write("127.0.0.1:4000".parse().unwrap(), Some("127.0.0.1:4001".parse().unwrap())).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "ADMIN_ADDR=127.0.0.1:4000\nCAPTURE_ADDR=127.0.0.1:4001\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no partial file is left beside it");
        drop(ready);
        assert!(!path.exists());
    }
}
