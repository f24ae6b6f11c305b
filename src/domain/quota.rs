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
        self.machines = self.machines.saturating_add(1);
        self.resources.cores = self.resources.cores.saturating_add(r.cores);
        self.resources.memory_mib = self.resources.memory_mib.saturating_add(r.memory_mib);
        self.resources.disk_gib = self.resources.disk_gib.saturating_add(r.disk_gib);
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
/// Sums are taken in `i64`: any `i32` a client sends is compared, never overflowed.
pub fn check_quota(quota: Quota, usage: Usage, wanted: Resources) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if i64::from(usage.machines) + 1 > i64::from(quota.max_machines) {
        errors.push(FieldError::new("template_id", "error.quota_machines").with("max", quota.max_machines));
    }
    for (field, used, want, max) in [
        ("cores", usage.resources.cores, wanted.cores, quota.max_cores),
        ("memory_mib", usage.resources.memory_mib, wanted.memory_mib, quota.max_memory_mib),
        ("disk_gib", usage.resources.disk_gib, wanted.disk_gib, quota.max_disk_gib),
    ] {
        if i64::from(used) + i64::from(want) > i64::from(max) {
            errors.push(
                FieldError::new(field, "error.quota_left").with("left", (i64::from(max) - i64::from(used)).max(0)),
            );
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
    fn the_largest_numbers_are_refused_not_overflowed() {
        let big =
            Quota { max_machines: i32::MAX, max_cores: i32::MAX, max_memory_mib: i32::MAX, max_disk_gib: i32::MAX };
        let mut usage = Usage::default();
        usage.add(r(i32::MAX, i32::MAX, i32::MAX));
        usage.add(r(i32::MAX, 1, 1));
        let errs = check_quota(big, usage, r(i32::MAX, i32::MAX, i32::MAX));
        assert_eq!(errs.0.len(), 3);
        assert_eq!(errs.0[0].params, [("left", "0".to_string())]);
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
