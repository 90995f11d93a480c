//! The plan a run executes, kept in the journal's first record as the JSON text it was
//! serialized to.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A plan as JSON text. A run keeps its plan once as the engine's types and once as this text,
/// which takes a few times less memory than a `serde_json::Value` of the same plan.
#[derive(Debug, Clone)]
pub struct PlanJson(Box<RawValue>);

impl PlanJson {
    /// Serializes `plan`.
    pub fn new<T: Serialize + ?Sized>(plan: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(plan).map(PlanJson)
    }

    /// Reads the plan back as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for PlanJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for PlanJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PlanJson {
    /// Reads through a `Value`: a record's event is an internally tagged enum, which serde
    /// buffers, and a `RawValue` cannot be read from that buffer.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        RawValue::from_string(value.to_string()).map(PlanJson).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::PlanJson;
    use crate::{Event, Operator, PlaybookInfo};

    #[test]
    fn plan_reads_back_from_a_journal_line() {
        let plan = json!({ "plan_id": "plan-1", "steps": [{ "id": "isolate", "targets": [{ "id": "i-1" }] }] });
        let event = Event::RunStarted {
            playbook: PlaybookInfo { name: "p".into(), path: "p.yaml".into(), digest: "d".into() },
            plan_digest: "x".into(),
            inputs: Map::new(),
            on_failure: "rollback".into(),
            operator: Operator { local_user: "alice".into(), cloud_identities: Vec::new(), api_principal: None, approved_by: None },
            contain_version: "0.1.0".into(),
            plan: Some(PlanJson::new(&plan).unwrap()),
        };

        let line = serde_json::to_string(&event).unwrap();
        assert!(line.contains(r#""plan":{"plan_id":"plan-1","steps":[{"id":"isolate""#), "the plan is written as JSON, not as a string: {line}");
        let read: Event = serde_json::from_str(&line).unwrap();

        assert_eq!(read, event);
        let Event::RunStarted { plan: Some(read_plan), .. } = read else { panic!("not a run start: {read:?}") };
        assert_eq!(read_plan.parse::<serde_json::Value>().unwrap(), plan);
    }
}
