//! Catalog templates.

use poem_openapi::Object;

/// A catalog template.
#[derive(Debug, Object)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub node: String,
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    pub net0: String,
    pub storage: Option<String>,
    /// `node` (`pct exec` on the node), `guest` (SSH to the container) or `none`.
    pub finish_mode: String,
}

impl From<entities::template::Model> for Template {
    fn from(t: entities::template::Model) -> Self {
        Template {
            id: t.id,
            name: t.name,
            description: t.description,
            node: t.node,
            vmid: t.vmid,
            default_cores: t.default_cores,
            max_cores: t.max_cores,
            default_memory_mib: t.default_memory_mib,
            max_memory_mib: t.max_memory_mib,
            default_disk_gib: t.default_disk_gib,
            max_disk_gib: t.max_disk_gib,
            full_clone: t.full_clone,
            enabled: t.enabled,
            net0: t.net0,
            storage: t.storage,
            finish_mode: t.finish_mode,
        }
    }
}

/// A template as an admin writes it.
#[derive(Debug, Object)]
pub struct TemplateBody {
    pub name: String,
    #[oai(default)]
    pub description: String,
    pub node: String,
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    #[oai(default = "default_true")]
    pub full_clone: bool,
    #[oai(default = "default_true")]
    pub enabled: bool,
    /// Default `name=eth0,bridge=vmbr0,ip=dhcp`.
    pub net0: Option<String>,
    pub storage: Option<String>,
    /// `node` (default), `guest` or `none`.
    pub finish_mode: Option<String>,
}

fn default_true() -> bool {
    true
}
