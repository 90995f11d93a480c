//! Group commit under concurrent appenders, with the fsync replaced through
//! `JournalWriter::set_sync_data` to slow it down or make it fail.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Event, JournalError, JournalWriter, journal_path, read_journal};

fn marker(thread: usize, index: usize) -> Event {
    Event::RunFinished { status: format!("{thread}/{index}") }
}

/// Counts the complete lines in the journal file, as a reader would see them now.
fn lines_in(path: &Path) -> u64 {
    std::fs::read(path).unwrap().iter().filter(|&&b| b == b'\n').count() as u64
}

/// Waits until the journal contains `lines` lines, so that a test's fsync can cover a known set of
/// records.
fn wait_for_lines(path: &Path, lines: u64) {
    let started = Instant::now();
    while lines_in(path) < lines {
        assert!(started.elapsed() < Duration::from_secs(30), "the journal never reached {lines} lines");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn concurrent_appends_share_fsyncs() {
    const THREADS: usize = 32;
    const PER_THREAD: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut writer = JournalWriter::create(dir.path(), "run-1").unwrap();
    let path: PathBuf = writer.path().to_path_buf();

    // A slow disk: each fsync takes 2 ms. `synced_lines` is the highest line count an fsync
    // that completed had seen in the file when it started.
    let synced_lines = Arc::new(AtomicU64::new(0));
    let (hook_lines, hook_path) = (synced_lines.clone(), path.clone());
    writer.set_sync_data(Box::new(move |file: &File| {
        let lines = lines_in(&hook_path);
        std::thread::sleep(Duration::from_millis(2));
        file.sync_data()?;
        hook_lines.fetch_max(lines, Ordering::SeqCst);
        Ok(())
    }));

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (writer, synced_lines) = (&writer, &synced_lines);
            scope.spawn(move || {
                for index in 0..PER_THREAD {
                    let record = writer.append(marker(thread, index)).unwrap();
                    let synced = synced_lines.load(Ordering::SeqCst);
                    assert!(synced >= record.seq, "append of record {} returned before an fsync covered it (synced through line {synced})", record.seq);
                }
            });
        }
    });

    let journal = read_journal(&path).unwrap();
    let total = (THREADS * PER_THREAD) as u64;
    assert!(journal.problems.is_empty(), "{:?}", journal.problems);
    assert!(journal.chain_intact());
    assert_eq!(journal.records.len() as u64, total);
    for (index, record) in journal.records.iter().enumerate() {
        assert_eq!(record.seq, index as u64 + 1);
    }

    // Each thread's records are in the order it appended them.
    let mut next = vec![0usize; THREADS];
    for record in &journal.records {
        let Event::RunFinished { status } = &record.event else { panic!("unexpected record {record:?}") };
        let (thread, index) = status.split_once('/').unwrap();
        let (thread, index): (usize, usize) = (thread.parse().unwrap(), index.parse().unwrap());
        assert_eq!(index, next[thread], "thread {thread}'s records are out of order");
        next[thread] += 1;
    }

    let stats = writer.stats();
    assert_eq!(stats.records, total);
    assert!(stats.syncs >= 1);
    assert!(stats.syncs < total, "every record had an fsync of its own: {stats:?}");
}

#[test]
fn failed_fsync_fails_covered_appenders() {
    const THREADS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let mut writer = JournalWriter::create(dir.path(), "run-1").unwrap();
    let path = journal_path(dir.path(), "run-1");

    // The first fsync succeeds. The second waits until every thread has written its record,
    // so that it covers them all, and fails.
    let calls = Arc::new(AtomicU64::new(0));
    let (hook_calls, hook_path) = (calls.clone(), path.clone());
    writer.set_sync_data(Box::new(move |file: &File| {
        if hook_calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return file.sync_data();
        }
        wait_for_lines(&hook_path, 1 + THREADS as u64);
        Err(io::Error::other("injected fsync failure"))
    }));

    let first = writer.append(marker(0, 0)).unwrap();
    assert_eq!(first.seq, 1);

    let results: Vec<Result<_, JournalError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS).map(|thread| scope.spawn({
            let writer = &writer;
            move || writer.append(marker(thread + 1, 0))
        })).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });

    let leaders = results.iter().filter(|r| matches!(r, Err(JournalError::Io { .. }))).count();
    let followers = results.iter().filter(|r| matches!(r, Err(JournalError::Poisoned { .. }))).count();
    assert_eq!(leaders, 1, "{results:?}");
    assert_eq!(followers, THREADS - 1, "{results:?}");
    assert_eq!(writer.stats().syncs, 2, "one fsync for the first record, one that failed for the rest");

    // The writer stays poisoned: a later append fails before writing or syncing anything.
    let later = writer.append(marker(99, 0));
    let Err(JournalError::Poisoned { reason, .. }) = &later else { panic!("expected a poisoned writer, got {later:?}") };
    assert!(reason.contains("injected fsync failure"), "{reason}");
    assert!(later.unwrap_err().to_string().contains("contain journal verify"));
    assert_eq!(writer.stats().syncs, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(lines_in(&path), 1 + THREADS as u64);
}
