//! Whole-resource reads and writes of ARM, with `If-Match` on the ETag that was read.
//!
//! The 0.21 typed models drop properties they do not know, and their builders offer no
//! `If-Match` for NICs, NSGs or subnets. So a resource is read as JSON, changed in the one field
//! concerned, and written back whole with the ETag of the read.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use azure_core::Method;
use contain_core::{ActionError, CallContext, ErrorKind};
use serde_json::Value;

use crate::http::{Api, Http};
use crate::ids::{ArmId, arm_path};
use crate::lro::Finished;

/// A resource as read, with its ETag.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub(crate) body: Value,
    pub(crate) etag: Option<String>,
}

/// One lock per top-level resource (an NSG, a VNet with its subnets, a NIC), so that this
/// process sends one write at a time to each: ARM rejects concurrent writes to one parent with
/// 409 `AnotherOperationInProgress`.
static PARENT_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = LazyLock::new(Default::default);

async fn lock_parent(id: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let key = ArmId::top_level(id).to_ascii_lowercase();
    let lock = PARENT_LOCKS.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
    lock.lock_owned().await
}

/// How many times a write whose ETag went stale is read and tried again.
const STALE_ATTEMPTS: u32 = 3;

impl Http {
    /// Reads a resource, or `None` when it does not exist.
    pub(crate) async fn read_resource(&self, context: &CallContext, id: &str, api_version: &str) -> Result<Option<Read>, ActionError> {
        match self.get(context, Api::Arm, &arm_path(id, api_version)).await {
            Ok(reply) => Ok(Some(Read { etag: reply.etag(), body: reply.body })),
            Err(error) if error.kind == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads a resource that must exist.
    pub(crate) async fn require_resource(&self, context: &CallContext, id: &str, api_version: &str) -> Result<Read, ActionError> {
        self.read_resource(context, id, api_version).await?.ok_or_else(|| ActionError::new(ErrorKind::NotFound, format!("{id} not found")).with_resource(id))
    }

    /// Writes a resource whole and waits for its operation. The caller holds the parent's lock.
    async fn put_unlocked(&self, context: &CallContext, id: &str, api_version: &str, body: &Value, if_match: Option<&str>, description: &str) -> Result<Finished, ActionError> {
        let reply = self.send(context, Api::Arm, Method::Put, &arm_path(id, api_version), Some(body), if_match).await?;
        self.finish(context, &reply, description).await
    }

    /// Creates a resource unless `exists` accepts the one already there, checking under the
    /// parent's lock so that concurrent targets create it once. Returns `None` when it existed.
    pub(crate) async fn create_once(
        &self,
        context: &CallContext,
        id: &str,
        api_version: &str,
        body: &Value,
        exists: impl Fn(&Value) -> bool,
        description: &str,
    ) -> Result<Option<Finished>, ActionError> {
        let _parent = lock_parent(id).await;
        if self.read_resource(context, id, api_version).await?.is_some_and(|read| exists(&read.body)) {
            return Ok(None);
        }
        self.put_unlocked(context, id, api_version, body, None, description).await.map(Some)
    }

    /// Deletes a resource and waits for its operation.
    pub(crate) async fn delete_resource(&self, context: &CallContext, id: &str, api_version: &str, if_match: Option<&str>, description: &str) -> Result<Finished, ActionError> {
        let _parent = lock_parent(id).await;
        let reply = self.send(context, Api::Arm, Method::Delete, &arm_path(id, api_version), None, if_match).await?;
        self.finish(context, &reply, description).await
    }

    /// Reads a resource, lets `change` edit its JSON, and writes it back whole with `If-Match`.
    /// `change` returns false when the resource already has the wanted value: nothing is
    /// written then. A write refused because the ETag went stale is read and tried again.
    pub(crate) async fn update_resource(
        &self,
        context: &CallContext,
        id: &str,
        api_version: &str,
        description: &str,
        change: impl Fn(&mut Value) -> Result<bool, ActionError>,
    ) -> Result<Option<Finished>, ActionError> {
        let _parent = lock_parent(id).await;
        let mut attempt = 1;
        loop {
            let read = self.require_resource(context, id, api_version).await?;
            let mut body = read.body;
            if !change(&mut body)? {
                return Ok(None);
            }
            match self.put_unlocked(context, id, api_version, &body, read.etag.as_deref(), description).await {
                Err(error) if error.code.as_deref() == Some("PreconditionFailed") && attempt < STALE_ATTEMPTS => {
                    tracing::info!("{description}: {id} changed since it was read; reading it again");
                    attempt += 1;
                }
                other => return other.map(Some),
            }
        }
    }
}
