use std::sync::Arc;

use contain_core::{Action, ActionKind, Provider, ResourceTypeInfo};

/// The resource types and actions the configured providers offer, for validation.
pub struct Catalog<'a> {
    providers: &'a [Arc<dyn Provider>],
    types: Vec<(usize, ResourceTypeInfo)>,
}

impl<'a> Catalog<'a> {
    pub fn new(providers: &'a [Arc<dyn Provider>]) -> Self {
        let types = providers
            .iter()
            .enumerate()
            .flat_map(|(index, provider)| provider.resource_types().into_iter().map(move |info| (index, info)))
            .collect();
        Catalog { providers, types }
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceTypeInfo> {
        self.types.iter().map(|(_, info)| info).find(|info| info.name == name)
    }

    /// The provider that owns a resource type.
    pub fn provider(&self, resource_type: &str) -> Option<&'a Arc<dyn Provider>> {
        self.types
            .iter()
            .find(|(_, info)| info.name == resource_type)
            .map(|(index, _)| &self.providers[*index])
    }

    pub fn action(&self, kind: ActionKind, resource_type: &str) -> Option<Arc<dyn Action>> {
        self.provider(resource_type)?.action(kind, resource_type)
    }

    /// Every resource type name, for "valid types are …" messages.
    pub fn type_names(&self) -> Vec<&'static str> {
        self.types.iter().map(|(_, info)| info.name).collect()
    }
}
