//! Quotas and template limits: what one more request may ask for.

use super::{FieldError, FieldErrors};

/// Resources of one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
}

/// A user's effective quota (role default with per-user overrides applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_machines: i32,
    pub max_cores: i32,
    pub max_memory_mib: i32,
    pub max_disk_gib: i32,
}

/// Per-user overrides; `None` keeps the role's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaOverride {
    pub max_machines: Option<i32>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
}

impl Quota {
    pub fn with_override(self, o: QuotaOverride) -> Quota {
        Quota {
            max_machines: o.max_machines.unwrap_or(self.max_machines),
            max_cores: o.max_cores.unwrap_or(self.max_cores),
            max_memory_mib: o.max_memory_mib.unwrap_or(self.max_memory_mib),
            max_disk_gib: o.max_disk_gib.unwrap_or(self.max_disk_gib),
        }
    }
}

/// What a user's pending and active requests already hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub machines: i32,
    pub resources: Resources,
}

impl Usage {
    pub fn add(&mut self, r: Resources) {
        self.machines += 1;
        self.resources.cores += r.cores;
        self.resources.memory_mib += r.memory_mib;
        self.resources.disk_gib += r.disk_gib;
    }
}

/// Bounds a template puts on each request made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    pub max: Resources,
}

/// Checks `wanted` against the template's bounds (at least 1 of each, at most the maximum).
pub fn check_template_limits(limits: TemplateLimits, wanted: Resources) -> FieldErrors {
    let mut errors = FieldErrors::default();
    for (field, value, max) in [
        ("cores", wanted.cores, limits.max.cores),
        ("memory_mib", wanted.memory_mib, limits.max.memory_mib),
        ("disk_gib", wanted.disk_gib, limits.max.disk_gib),
    ] {
        if value < 1 {
            errors.push(FieldError::new(field, "error.at_least").with("min", 1));
        } else if value > max {
            errors.push(FieldError::new(field, "error.template_max").with("max", max));
        }
    }
    errors
}

/// Checks that `usage` plus `wanted` stays within `quota`; reports each exceeded dimension with what is left.
pub fn check_quota(quota: Quota, usage: Usage, wanted: Resources) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if usage.machines + 1 > quota.max_machines {
        errors.push(FieldError::new("template_id", "error.quota_machines").with("max", quota.max_machines));
    }
    for (field, used, want, max) in [
        ("cores", usage.resources.cores, wanted.cores, quota.max_cores),
        ("memory_mib", usage.resources.memory_mib, wanted.memory_mib, quota.max_memory_mib),
        ("disk_gib", usage.resources.disk_gib, wanted.disk_gib, quota.max_disk_gib),
    ] {
        if used + want > max {
            errors.push(FieldError::new(field, "error.quota_left").with("left", (max - used).max(0)));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota { max_machines: 2, max_cores: 4, max_memory_mib: 4096, max_disk_gib: 20 };

    fn r(cores: i32, memory_mib: i32, disk_gib: i32) -> Resources {
        Resources { cores, memory_mib, disk_gib }
    }

    #[test]
    fn quota_counts_what_is_held_plus_what_is_wanted() {
        let mut usage = Usage::default();
        assert!(check_quota(Q, usage, r(2, 2048, 10)).is_empty());
        usage.add(r(2, 2048, 10));
        assert!(check_quota(Q, usage, r(2, 2048, 10)).is_empty());
        let errs = check_quota(Q, usage, r(3, 2048, 11));
        let fields: Vec<_> = errs.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["cores", "disk_gib"]);
        assert_eq!(errs.0[0].params, [("left", "2".to_string())]);
        usage.add(r(1, 1, 1));
        assert_eq!(check_quota(Q, usage, r(1, 1, 1)).0[0].code, "error.quota_machines");
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let q = Q.with_override(QuotaOverride { max_cores: Some(16), ..Default::default() });
        assert_eq!(q, Quota { max_cores: 16, ..Q });
    }

    #[test]
    fn template_limits_bound_each_resource() {
        let limits = TemplateLimits { max: r(4, 4096, 32) };
        assert!(check_template_limits(limits, r(4, 4096, 32)).is_empty());
        let errs = check_template_limits(limits, r(0, 5000, 32));
        let codes: Vec<_> = errs.0.iter().map(|e| (e.field, e.code)).collect();
        assert_eq!(codes, [("cores", "error.at_least"), ("memory_mib", "error.template_max")]);
    }
}
