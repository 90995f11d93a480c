use chrono::Utc;

/// A new id such as `run-20261204T201512Z-3f9a1c`: sortable by time, unique by its random tail.
pub(crate) fn new_id(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &random[..6])
}
