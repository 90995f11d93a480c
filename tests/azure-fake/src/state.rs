//! The state of one fake: stored resources, issued tokens, recorded requests,
//! injected faults and running asynchronous operations.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::http::Req;

/// A response that replaces the normal response for the next `times` requests whose
/// method and path match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP method to match, case-insensitive; `*` or an empty string matches any method.
    pub method: String,
    /// Text that the request path must contain, case-insensitive. Graph paths
    /// start with `/graph/v1.0/`, also for the inner requests of a `$batch`.
    pub path_contains: String,
    pub status: u16,
    /// Error code of the body, such as `RetryableErrorDueToAnotherOperation`.
    pub code: String,
    /// Value of the `Retry-After` header in seconds; no header when `None`.
    pub retry_after: Option<u32>,
    /// Number of matching requests that get this response.
    pub times: u32,
}

impl Fault {
    /// Creates a fault that applies to one matching request, without `Retry-After`.
    pub fn new(method: &str, path_contains: &str, status: u16, code: &str) -> Fault {
        Fault {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            status,
            code: code.to_string(),
            retry_after: None,
            times: 1,
        }
    }

    pub fn retry_after(mut self, seconds: u32) -> Fault {
        self.retry_after = Some(seconds);
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_matches = self.method.is_empty()
            || self.method == "*"
            || self.method.eq_ignore_ascii_case(method);
        method_matches
            && path
                .to_ascii_lowercase()
                .contains(&self.path_contains.to_ascii_lowercase())
    }
}

/// One request that the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Percent-decoded path, such as `/graph/v1.0/users/alice@contoso.com`.
    pub path: String,
    /// Raw query string without the leading `?`.
    pub query: String,
    /// Value of the `If-Match` header.
    pub if_match: Option<String>,
    /// The JSON body, or `Null` when the body is empty or not JSON. Token
    /// requests are recorded as an object of their form fields without `client_secret`.
    pub body: Value,
}

/// Settings that tests change through `FakeAzure`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Number of polls that return `InProgress` before the final status.
    pub async_polls: u32,
    /// Value of `Retry-After` on writes and on polls that are in progress, in seconds.
    pub retry_after: u32,
    /// Maximum number of security rules in one network security group.
    pub rule_limit: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        // ARM allows 1,000 rules per network security group.
        Settings {
            async_polls: 1,
            retry_after: 0,
            rule_limit: 1000,
        }
    }
}

/// A change that an asynchronous ARM operation applies when it succeeds.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Store this body, already normalized, under the lower-case id.
    Put {
        key: String,
        body: Value,
    },
    Delete {
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed { code: String, message: String },
}

/// An asynchronous ARM operation that the client polls.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub polls_left: u32,
    /// When the operation ends in the cloud-limits mode, which ends operations
    /// by time instead of by poll count.
    pub ends_at: Option<std::time::Instant>,
    pub change: Change,
    /// Set by `fail_operations`: the operation ends `Failed` and changes nothing.
    pub fails: bool,
    pub is_delete: bool,
    /// Lower-case id of the top-level resource that the operation locks.
    pub lock_key: String,
    /// Lower-case id of the resource the final `Location` poll returns, for PUTs.
    pub result_key: String,
    pub outcome: Option<Outcome>,
}

/// Graph relations that are not properties of an object.
#[derive(Debug, Clone, Default)]
pub(crate) struct GraphRelations {
    /// User id (lower case) to its `memberOf` objects.
    pub member_of: BTreeMap<String, Vec<Value>>,
    /// Service principal id (lower case) to its `appRoleAssignedTo` entries.
    pub app_role_assigned_to: BTreeMap<String, Vec<Value>>,
    /// Domain name (lower case) to its internalDomainFederation objects.
    pub federation: BTreeMap<String, Vec<Value>>,
    /// Ids (lower case) of users whose update the caller may not make.
    pub protected_users: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// `http://127.0.0.1:PORT`, for the URLs in `Azure-AsyncOperation` and `Location`.
    pub base_url: String,
    /// ARM resources by lower-case id, as stored (without computed back-references).
    pub arm: BTreeMap<String, Value>,
    /// Graph objects by collection, then by lower-case id.
    pub graph: BTreeMap<String, BTreeMap<String, Value>>,
    pub relations: GraphRelations,
    pub tokens: HashSet<String>,
    pub requests: Vec<RecordedRequest>,
    pub faults: Vec<Fault>,
    /// Path fragments from `fail_operations`, each used by one write.
    pub failing_writes: Vec<String>,
    pub operations: HashMap<String, Operation>,
    /// Lower-case id of a top-level resource to the operation that is changing it.
    pub locks: HashMap<String, String>,
    pub settings: Settings,
    /// The cloud-limits mode, when `FakeAzure::set_limits` turned it on.
    pub limits: Option<crate::limits::LimitState>,
    /// The Graph limits, when `FakeAzure::set_graph_limits` turned them on.
    pub graph_limits: Option<crate::graph_limits::GraphLimitState>,
}

impl State {
    /// Takes one use of the first fault that matches, if any.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self
            .faults
            .iter()
            .position(|fault| fault.times > 0 && fault.matches(method, path))?;
        let fault = self.faults[index].clone();
        self.faults[index].times -= 1;
        if self.faults[index].times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    /// Takes the first `fail_operations` entry that the path contains, if any.
    pub fn take_failing_write(&mut self, path: &str) -> bool {
        let path = path.to_ascii_lowercase();
        match self
            .failing_writes
            .iter()
            .position(|fragment| path.contains(&fragment.to_ascii_lowercase()))
        {
            Some(index) => {
                self.failing_writes.remove(index);
                true
            }
            None => false,
        }
    }

    /// Returns the `Retry-After` of writes and in-progress polls, in seconds.
    pub fn operation_retry_after(&self) -> u64 {
        match &self.limits {
            Some(limits) => limits.operation_retry_after(),
            None => u64::from(self.settings.retry_after),
        }
    }

    pub fn record(&mut self, req: &Req, body: Value) {
        self.requests.push(RecordedRequest {
            method: req.method.clone(),
            path: crate::http::percent_decode(&req.path, false),
            query: req.query.clone(),
            if_match: req.header("if-match").map(str::to_string),
            body,
        });
    }

    pub fn normalize_context(&self) -> crate::arm::resources::Context<'_> {
        crate::arm::resources::Context {
            arm: &self.arm,
            rule_limit: self.settings.rule_limit,
            check_references: true,
        }
    }

    pub fn token_is_valid(&self, req: &Req) -> bool {
        let Some(value) = req.header("authorization") else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && self.tokens.contains(token.trim())
    }
}
