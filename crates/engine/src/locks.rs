//! Locks on targets across processes, so that two runs never change the same resource at once.
//!
//! Each target has a lock file under `<state dir>/locks`, named by the SHA-256 of the target's
//! key, holding the id of the run that last took it. A run takes an exclusive operating-system
//! lock on the file of every target it may change before it journals anything, and keeps them
//! until it ends. The locks go away with the process: a lock held by a process that died is free
//! at once, so the run's own rollback or resume can take it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use contain_core::Target;
use sha2::{Digest, Sha256};

use crate::EngineError;

/// The locks of one run; dropping it releases them.
#[derive(Debug)]
pub(crate) struct TargetLocks {
    _files: Vec<File>,
}

/// Locks every target, or none: when another process holds one, the error names its run.
pub(crate) fn lock_targets<'t>(state_dir: &Path, run_id: &str, targets: impl IntoIterator<Item = &'t Target>) -> Result<TargetLocks, EngineError> {
    let dir = state_dir.join("locks");
    let io_error = |path: &Path, e: std::io::Error| EngineError::Run { run_id: run_id.to_string(), message: format!("cannot lock {}: {e}", path.display()) };
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;

    let mut keyed: Vec<(String, String)> = targets.into_iter().map(|t| (t.key(), t.to_string())).collect();
    keyed.sort();
    keyed.dedup_by(|a, b| a.0 == b.0);

    let mut files = Vec::with_capacity(keyed.len());
    for (key, name) in keyed {
        let path = lock_path(&dir, &key);
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| io_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder(&mut file).unwrap_or_else(|| "another run".to_string());
                return Err(EngineError::TargetLocked { target: name, holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
        }

        // The holder's run id, for the message another process shows when it is refused.
        let record = format!("{run_id}\n{key}\n");
        file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).and_then(|_| file.write_all(record.as_bytes())).map_err(|e| io_error(&path, e))?;
        files.push(file);
    }
    Ok(TargetLocks { _files: files })
}

fn lock_path(dir: &Path, key: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    dir.join(format!("{}.lock", &digest[..32]))
}

/// Reads the run id written in a lock file, if it can.
fn holder(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.lines().next().filter(|line| !line.is_empty()).map(|line| format!("run {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str) -> Target {
        Target { resource_type: "aws.ec2.instance".into(), id: id.into(), region: Some("us-east-1".into()), account: None }
    }

    #[test]
    fn lock_conflict() {
        let dir = std::env::temp_dir().join(format!("contain-locks-{}", std::process::id()));
        let first = lock_targets(&dir, "run-first", [&target("i-1"), &target("i-2")]).expect("first run locks");

        let refused = lock_targets(&dir, "run-second", [&target("i-3"), &target("i-2")]).expect_err("second run is refused");
        let message = refused.to_string();
        assert!(message.contains("run run-first"), "{message}");
        assert!(message.contains("i-2"), "{message}");

        // Nothing else was kept locked by the refused run: i-3 is free.
        drop(lock_targets(&dir, "run-third", [&target("i-3")]).expect("i-3 is free"));

        drop(first);
        lock_targets(&dir, "run-second", [&target("i-2")]).expect("free once the first run ends");
        std::fs::remove_dir_all(&dir).ok();
    }
}
