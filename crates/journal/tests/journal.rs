use std::io::Write;

use contain_journal::{Event, JournalError, JournalWriter, journal_path, read_journal};

fn finished(status: &str) -> Event {
    Event::RunFinished { status: status.to_string() }
}

fn write_three(dir: &std::path::Path) {
    let writer = JournalWriter::create(dir, "run-1").unwrap();
    writer.append(Event::RollbackFinished { status: "a".into() }).unwrap();
    writer.append(Event::RollbackFinished { status: "b".into() }).unwrap();
    writer.append(finished("succeeded")).unwrap();
}

#[test]
fn records_chain_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    write_three(dir.path());

    let journal = read_journal(&journal_path(dir.path(), "run-1")).unwrap();
    assert_eq!(journal.records.len(), 3);
    assert!(journal.problems.is_empty(), "{:?}", journal.problems);
    assert_eq!(journal.records[0].seq, 1);
    assert_eq!(journal.records[0].prev, contain_journal::GENESIS_HASH);
    assert_ne!(journal.records[1].prev, contain_journal::GENESIS_HASH);
    assert_eq!(journal.records[2].event, finished("succeeded"));
}

#[test]
fn edited_record_breaks_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_three(dir.path());
    let path = journal_path(dir.path(), "run-1");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"a\"", "\"z\"");
    std::fs::write(&path, text).unwrap();

    let journal = read_journal(&path).unwrap();
    assert_eq!(journal.records.len(), 1);
    assert_eq!(journal.problems.len(), 1);
    assert_eq!(journal.problems[0].line, 2);
    assert!(journal.problems[0].message.contains("edited"), "{}", journal.problems[0].message);
    assert!(!journal.chain_intact());
}

#[test]
fn reordered_records_break_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_three(dir.path());
    let path = journal_path(dir.path(), "run-1");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1])).unwrap();

    let journal = read_journal(&path).unwrap();
    assert_eq!(journal.records.len(), 1, "only the records before the swap are trusted");
    assert_eq!(journal.problems[0].line, 2);
    assert!(journal.problems[0].message.contains("removed or reordered"), "{}", journal.problems[0].message);
    assert!(!journal.chain_intact());
}

#[test]
fn removed_record_breaks_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_three(dir.path());
    let path = journal_path(dir.path(), "run-1");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();

    let journal = read_journal(&path).unwrap();
    assert_eq!(journal.records.len(), 1);
    assert!(journal.problems[0].message.contains("removed or reordered"), "{}", journal.problems[0].message);
}

#[test]
fn torn_tail_is_ignored_and_cut_on_open() {
    let dir = tempfile::tempdir().unwrap();
    write_three(dir.path());
    let path = journal_path(dir.path(), "run-1");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"{\"seq\":4,\"time\":\"2026").unwrap();
    drop(file);

    let journal = read_journal(&path).unwrap();
    assert_eq!(journal.records.len(), 3);
    assert!(journal.torn_tail);
    assert!(journal.chain_intact());

    let (writer, read) = JournalWriter::open(dir.path(), "run-1").unwrap();
    assert!(read.torn_tail);
    writer.append(finished("rolled_back")).unwrap();
    drop(writer);

    let journal = read_journal(&path).unwrap();
    assert_eq!(journal.records.len(), 4);
    assert!(journal.problems.is_empty(), "{:?}", journal.problems);
    assert_eq!(journal.records[3].seq, 4);
}

#[test]
fn second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let _first = JournalWriter::create(dir.path(), "run-1").unwrap();

    let second = JournalWriter::open(dir.path(), "run-1");
    assert!(matches!(second, Err(JournalError::Locked { .. })), "{:?}", second.err());
    assert!(contain_journal::is_locked(dir.path(), "run-1"));
}

#[test]
fn missing_run_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = JournalWriter::open(dir.path(), "run-nope").err().unwrap();
    assert!(matches!(err, JournalError::NotFound { .. }));
    assert!(err.to_string().contains("contain runs list"), "{err}");
}
