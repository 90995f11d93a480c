//! JSON on standard output, written as it is serialized.

use std::io::Write;

/// Prints `value` as pretty JSON and a newline. The document goes to standard output as it is
/// serialized, so a plan or report of many thousands of targets is not held in memory as one
/// string first.
pub(crate) fn print_pretty<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
