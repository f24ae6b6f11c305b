//! Automatic approval: rules an admin writes so that requests within plain limits are approved at once,
//! as "policy", instead of waiting in the queue. A rule names what it covers (an entry or all, a role or
//! all, optionally only listed users or groups) and the most a request may ask for; the first enabled rule
//! that covers a request approves it.

use super::quota::Resources;
use super::roles::Role;
use super::{FieldError, FieldErrors};

/// Largest value a rule's limits accept: far above any real machine, so a typo is refused.
const LIMIT_MAX: i32 = 1_000_000;

/// One rule, as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    pub id: i64,
    pub name: String,
    pub enabled: bool,
    /// The catalog entry it covers; `None`: every entry.
    pub template_id: Option<i64>,
    /// The requester's role it covers; `None`: every role.
    pub role: Option<Role>,
    /// Per-request limits; `None`: the entry's own bound is the only one.
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
    /// How many machines of the covered entry (this request included) the requester may hold; `None`:
    /// no count limit beyond the quota.
    pub max_machines: Option<i32>,
    /// Only these users…
    pub user_ids: Vec<i64>,
    /// …or members of these groups. Both empty: anyone the entry and role allow.
    pub group_ids: Vec<i64>,
}

/// What a rule looks at in a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    pub template_id: i64,
    pub user_id: i64,
    pub role: Role,
    pub group_ids: Vec<i64>,
    pub wanted: Resources,
    /// Machines of this entry the requester holds already (requests that hold quota), this one excluded.
    pub held_from_entry: i32,
}

impl ApprovalRule {
    /// Whether this rule approves a request with these facts.
    pub fn covers(&self, f: &RequestFacts) -> bool {
        let within = |limit: Option<i32>, v: i32| limit.is_none_or(|max| v <= max);
        self.enabled
            && self.template_id.is_none_or(|t| t == f.template_id)
            && self.role.is_none_or(|r| r == f.role)
            && self.names_requester(f)
            && within(self.max_cores, f.wanted.cores)
            && within(self.max_memory_mib, f.wanted.memory_mib)
            && within(self.max_disk_gib, f.wanted.disk_gib)
            && within(self.max_machines, f.held_from_entry.saturating_add(1))
    }

    fn names_requester(&self, f: &RequestFacts) -> bool {
        if self.user_ids.is_empty() && self.group_ids.is_empty() {
            return true;
        }
        self.user_ids.contains(&f.user_id) || self.group_ids.iter().any(|g| f.group_ids.contains(g))
    }
}

/// The rule that approves a request: the first enabled one (in the order given, by id) that covers it.
pub fn first_covering<'a>(rules: &'a [ApprovalRule], facts: &RequestFacts) -> Option<&'a ApprovalRule> {
    rules.iter().find(|r| r.covers(facts))
}

/// Checks what an admin typed for a rule; every field error at once.
pub fn check_rule(rule: &ApprovalRule) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = rule.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        errors.push(FieldError::new("name", "error.rule_name"));
    }
    for (field, v) in [
        ("max_cores", rule.max_cores),
        ("max_memory_mib", rule.max_memory_mib),
        ("max_disk_gib", rule.max_disk_gib),
        ("max_machines", rule.max_machines),
    ] {
        if v.is_some_and(|v| !(1..=LIMIT_MAX).contains(&v)) {
            errors.push(FieldError::new(field, "error.rule_limit"));
        }
    }
    errors.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> ApprovalRule {
        ApprovalRule {
            id: 1,
            name: "small lab boxes".into(),
            enabled: true,
            template_id: Some(7),
            role: Some(Role::User),
            max_cores: Some(2),
            max_memory_mib: Some(2048),
            max_disk_gib: Some(16),
            max_machines: Some(2),
            user_ids: vec![],
            group_ids: vec![],
        }
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            template_id: 7,
            user_id: 42,
            role: Role::User,
            group_ids: vec![],
            wanted: Resources { cores: 2, memory_mib: 2048, disk_gib: 16 },
            held_from_entry: 1,
        }
    }

    /// Asserts whether the rule covers the request once `change` is made to both.
    fn case(what: &str, change: impl Fn(&mut ApprovalRule, &mut RequestFacts), expected: bool) {
        let (mut r, mut f) = (rule(), facts());
        change(&mut r, &mut f);
        assert_eq!(r.covers(&f), expected, "{what}");
    }

    #[test]
    fn which_rule_approves_what() {
        case("exactly at every limit", |_, _| {}, true);
        case("one core too many", |_, f| f.wanted.cores = 3, false);
        case("one MiB too many", |_, f| f.wanted.memory_mib = 2049, false);
        case("one GiB too many", |_, f| f.wanted.disk_gib = 17, false);
        case("a third machine of the entry", |_, f| f.held_from_entry = 2, false);
        case("another entry", |_, f| f.template_id = 8, false);
        case("any entry", |r, f| (r.template_id, f.template_id) = (None, 8), true);
        case("an admin under a user rule", |_, f| f.role = Role::Admin, false);
        case("any role", |r, f| (r.role, f.role) = (None, Role::Admin), true);
        case("disabled", |r, _| r.enabled = false, false);
        let unlimited = |r: &mut ApprovalRule, f: &mut RequestFacts| {
            (r.max_cores, r.max_memory_mib, r.max_disk_gib, r.max_machines) = (None, None, None, None);
            (f.wanted.cores, f.held_from_entry) = (64, 50);
        };
        case("no limits at all", unlimited, true);
        case("listed user", |r, _| r.user_ids = vec![42], true);
        case("unlisted user", |r, _| r.user_ids = vec![41], false);
        case("member of a listed group", |r, f| (r.group_ids, f.group_ids) = (vec![3], vec![5, 3]), true);
        case("member of other groups only", |r, f| (r.group_ids, f.group_ids) = (vec![3], vec![5]), false);
        let in_group = |r: &mut ApprovalRule, f: &mut RequestFacts| {
            (r.user_ids, r.group_ids, f.group_ids) = (vec![41], vec![3], vec![3]);
        };
        case("unlisted user in a listed group", in_group, true);
    }

    #[test]
    fn the_first_covering_rule_in_order_wins() {
        let narrow = ApprovalRule { id: 1, max_cores: Some(1), ..rule() };
        let wide = ApprovalRule { id: 2, max_cores: Some(8), ..rule() };
        let wider = ApprovalRule { id: 3, max_cores: None, ..rule() };
        let rules = [narrow, wide, wider];
        assert_eq!(first_covering(&rules, &facts()).map(|r| r.id), Some(2));
        let big = RequestFacts { wanted: Resources { cores: 16, ..facts().wanted }, ..facts() };
        assert_eq!(first_covering(&rules, &big).map(|r| r.id), Some(3));
        assert_eq!(first_covering(&rules[..2], &big), None);
    }

    #[test]
    fn a_rule_with_a_blank_name_or_a_zero_limit_is_refused_field_by_field() {
        let bad = ApprovalRule { name: "  ".into(), max_cores: Some(0), max_machines: Some(LIMIT_MAX + 1), ..rule() };
        let errors = check_rule(&bad).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "max_cores", "max_machines"]);
        assert!(check_rule(&rule()).is_ok());
    }
}
