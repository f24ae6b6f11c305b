//! What one person's guest list cost PVE is kept for a short while, so a dashboard that reloads (its
//! live updates, a second tab) does not ask PVE again for every guest. Actions never read it: each is
//! checked with PVE when it is taken, and clears the person's entry so the next list is fresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::PveGuest;
use super::rights::AgentPrivilege;

/// How long a person's list is reused.
pub const LIST_TTL: Duration = Duration::from_secs(30);
/// How long the release read from `/version` is trusted (an upgrade is rare, and restarts nothing here).
const VERSION_TTL: Duration = Duration::from_secs(600);
/// Beyond this many people, expired entries are dropped when a new one comes.
const PRUNE_ABOVE: usize = 1024;

struct Entry {
    userid: String,
    at: Instant,
    guests: Vec<PveGuest>,
}

/// Per-person guest lists and the cluster's release, for one process.
#[derive(Default)]
pub struct Cache {
    lists: Mutex<HashMap<i64, Entry>>,
    agent: Mutex<Option<(Instant, AgentPrivilege)>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("lists", &self.lists.lock().map(|l| l.len()).unwrap_or_default()).finish()
    }
}

impl Cache {
    /// The list kept for account `user_id`, if it is fresh and was made for the same PVE user id (an
    /// identity relinked meanwhile gets a new list).
    pub fn get(&self, user_id: i64, userid: &str) -> Option<Vec<PveGuest>> {
        let lists = self.lists.lock().expect("guest cache");
        let e = lists.get(&user_id)?;
        (e.userid == userid && e.at.elapsed() < LIST_TTL).then(|| e.guests.clone())
    }

    pub fn put(&self, user_id: i64, userid: &str, guests: Vec<PveGuest>) {
        let mut lists = self.lists.lock().expect("guest cache");
        if lists.len() > PRUNE_ABOVE {
            lists.retain(|_, e| e.at.elapsed() < LIST_TTL);
        }
        lists.insert(user_id, Entry { userid: userid.to_owned(), at: Instant::now(), guests });
    }

    /// Forgets account `user_id`'s list (they acted: the next list shows the outcome).
    pub fn forget(&self, user_id: i64) {
        self.lists.lock().expect("guest cache").remove(&user_id);
    }

    pub(super) fn agent_privilege(&self) -> Option<AgentPrivilege> {
        let agent = self.agent.lock().expect("guest cache");
        agent.filter(|(at, _)| at.elapsed() < VERSION_TTL).map(|(_, p)| p)
    }

    pub(super) fn set_agent_privilege(&self, p: AgentPrivilege) {
        *self.agent.lock().expect("guest cache") = Some((Instant::now(), p));
    }
}
