//! Plugin archives for `phs plugins install`: a .zip or .tar.gz (.tgz) holding
//! a plugin folder, either at the top or inside a single top-level folder, as
//! GitHub's source archives are.
//!
//! Everything is read in memory and checked before anything is used: no
//! entry may leave the archive's root (absolute paths, `..`), tar links are
//! refused, files are capped in size and the whole archive in uncompressed
//! bytes, so a crafted archive cannot write outside or exhaust memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::manifest::{Manifest, ManifestError};
use super::source::{MAX_FILE_BYTES, PluginSource, SourceError};

/// Uncompressed bytes an archive may hold in all (a zip bomb stops here).
pub const MAX_ARCHIVE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: cannot read the archive: {message}")]
    Read { path: String, message: String },
    #[error("{0}: not a plugin archive; expected a .zip, .tar.gz or .tgz file")]
    UnknownKind(String),
    #[error("{archive}: entry `{entry}` points outside the archive; refusing to install it")]
    UnsafePath { archive: String, entry: String },
    #[error("{archive}: entry `{entry}` is a link; plugin archives may hold only files and folders")]
    Link { archive: String, entry: String },
    #[error("{archive}: `{entry}` is {size} bytes; plugin files are at most {max} bytes", max = MAX_FILE_BYTES)]
    Oversized { archive: String, entry: String, size: u64 },
    #[error("{archive}: more than {} bytes uncompressed", MAX_ARCHIVE_BYTES)]
    TooLarge { archive: String },
    #[error("{0}: no plugin.json at the top of the archive or inside its single top-level folder")]
    NoManifest(String),
    #[error("{archive}: {source}")]
    Source {
        archive: String,
        #[source]
        source: SourceError,
    },
}

/// Reads a plugin from an archive file.
pub fn read(path: &Path) -> Result<PluginSource, ArchiveError> {
    let name = path.display().to_string();
    let lower = name.to_ascii_lowercase();
    let read_err = |e: &dyn std::fmt::Display| ArchiveError::Read { path: name.clone(), message: e.to_string() };
    let file = std::fs::File::open(path).map_err(|e| read_err(&e))?;
    let mut reader = Entries { archive: name.clone(), files: BTreeMap::new(), total: 0 };
    if lower.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| read_err(&e))?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| read_err(&e))?;
            let entry_name = entry.name().to_string();
            if entry.is_symlink() {
                return Err(ArchiveError::Link { archive: name, entry: entry_name });
            }
            if entry.is_dir() {
                reader.check_path(&entry_name)?;
                continue;
            }
            let size = entry.size();
            reader.add(&entry_name, size, &mut entry)?;
        }
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| read_err(&e))? {
            let mut entry = entry.map_err(|e| read_err(&e))?;
            let entry_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(ArchiveError::Link { archive: name, entry: entry_name });
            }
            if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() {
                continue;
            }
            if kind.is_dir() {
                reader.check_path(&entry_name)?;
                continue;
            }
            if !kind.is_file() {
                return Err(ArchiveError::Link { archive: name, entry: entry_name });
            }
            let size = entry.size();
            reader.add(&entry_name, size, &mut entry)?;
        }
    } else {
        return Err(ArchiveError::UnknownKind(name));
    }
    reader.into_source()
}

struct Entries {
    archive: String,
    /// Path inside the archive -> contents, for plugin.json and .lua files.
    files: BTreeMap<String, Vec<u8>>,
    total: u64,
}

impl Entries {
    /// The entry's path, normalised, or an error when it could leave the root.
    fn check_path(&self, entry: &str) -> Result<String, ArchiveError> {
        let unsafe_path = || ArchiveError::UnsafePath { archive: self.archive.clone(), entry: entry.to_string() };
        let normal = entry.replace('\\', "/");
        if normal.starts_with('/') || normal.contains(':') {
            return Err(unsafe_path());
        }
        let parts: Vec<&str> = normal.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if parts.contains(&"..") {
            return Err(unsafe_path());
        }
        Ok(parts.join("/"))
    }

    fn add(&mut self, entry: &str, size: u64, contents: &mut dyn Read) -> Result<(), ArchiveError> {
        let path = self.check_path(entry)?;
        let file_name = path.rsplit('/').next().unwrap_or("");
        if file_name != "plugin.json" && !file_name.ends_with(".lua") {
            return Ok(());
        }
        let oversized = |size| ArchiveError::Oversized { archive: self.archive.clone(), entry: path.clone(), size };
        if size > MAX_FILE_BYTES {
            return Err(oversized(size));
        }
        // The declared size can lie: read at most one byte past the cap.
        let mut bytes = Vec::with_capacity(size as usize);
        contents
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::Read { path: self.archive.clone(), message: format!("{path}: {e}") })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(oversized(bytes.len() as u64));
        }
        self.total += bytes.len() as u64;
        if self.total > MAX_ARCHIVE_BYTES {
            return Err(ArchiveError::TooLarge { archive: self.archive.clone() });
        }
        self.files.insert(path, bytes);
        Ok(())
    }

    /// Finds the plugin's root (the top, or the single top-level folder) and builds the source.
    fn into_source(self) -> Result<PluginSource, ArchiveError> {
        let archive = self.archive;
        let root = if self.files.contains_key("plugin.json") {
            String::new()
        } else {
            let tops: std::collections::BTreeSet<&str> =
                self.files.keys().filter_map(|p| p.split_once('/').map(|(top, _)| top)).collect();
            match tops.into_iter().collect::<Vec<_>>()[..] {
                [top] if self.files.contains_key(&format!("{top}/plugin.json")) => format!("{top}/"),
                _ => return Err(ArchiveError::NoManifest(archive)),
            }
        };
        let source_err = |source: SourceError| ArchiveError::Source { archive: archive.clone(), source };
        let text = |path: &str, bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| source_err(SourceError::NotText(path.to_string())))
        };
        let mut manifest = None;
        let mut lua = BTreeMap::new();
        for (path, bytes) in self.files {
            let Some(rel) = path.strip_prefix(&root) else { continue };
            if rel == "plugin.json" {
                let parsed = Manifest::parse(&text(rel, bytes)?).map_err(|e: ManifestError| source_err(e.into()))?;
                manifest = Some(parsed);
            } else if rel.ends_with(".lua") && !rel.starts_with("tests/") && !rel.split('/').any(|p| p.starts_with('.'))
            {
                lua.insert(rel.to_string(), text(rel, bytes)?);
            }
        }
        let manifest = manifest.ok_or_else(|| ArchiveError::NoManifest(archive.clone()))?;
        PluginSource::new(manifest, lua).map_err(source_err)
    }
}
