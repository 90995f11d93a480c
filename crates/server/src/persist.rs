//! The server's own state on disk, beside the journals: runs waiting for approval and the
//! `Idempotency-Key`s of started runs, so that a restart of the server loses neither.
//! Each entry is one small JSON file, written whole (temporary file, fsync, rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Returns the directory of one kind of entry: `<state>/api/<kind>`.
pub(crate) fn dir(state_dir: &Path, kind: &str) -> PathBuf {
    state_dir.join("api").join(kind)
}

/// Returns a file name for a key of any characters: the hex SHA-256 of its parts.
pub(crate) fn hashed_name(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    format!("{}.json", hex::encode(hasher.finalize()))
}

/// Writes `value` to `dir/name` whole: a reader sees the old file or the new one.
pub(crate) fn write<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec(value).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads `dir/name`, or `None` when there is no such file.
pub(crate) fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> std::io::Result<Option<T>> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads every entry of `dir`. An entry that does not parse is logged and left out.
pub(crate) fn read_all<T: DeserializeOwned>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        match read(dir, &name) {
            Ok(Some(value)) => found.push(value),
            Ok(None) => {}
            Err(error) => tracing::warn!(file = %entry.path().display(), "ignoring an unreadable server state file: {error}"),
        }
    }
    found
}

/// Removes `dir/name`; a missing file is fine.
pub(crate) fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(name)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
