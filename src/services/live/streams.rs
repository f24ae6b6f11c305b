//! The live streams open in this process: a bound per user (each holds a connection and reads the
//! database and PVE from time to time), and the signal that ends them all when the server stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Open streams, counted per user.
#[derive(Debug)]
pub struct Streams {
    per_user: usize,
    open: Mutex<HashMap<i64, usize>>,
    closing: watch::Sender<bool>,
}

impl Streams {
    /// At most `per_user` streams per user at once.
    pub fn new(per_user: usize) -> Arc<Streams> {
        Arc::new(Streams { per_user, open: Mutex::default(), closing: watch::channel(false).0 })
    }

    /// A slot for one more stream of `user_id`, or `None` when the user has `per_user` open already.
    pub fn open(self: &Arc<Self>, user_id: i64) -> Option<Slot> {
        let mut open = self.open.lock().expect("live streams");
        let n = open.entry(user_id).or_default();
        if *n >= self.per_user {
            return None;
        }
        *n += 1;
        Some(Slot { streams: self.clone(), user_id, closing: self.closing.subscribe() })
    }

    /// How many streams `user_id` has open.
    pub fn count(&self, user_id: i64) -> usize {
        self.open.lock().expect("live streams").get(&user_id).copied().unwrap_or(0)
    }

    /// Ends every stream, open or to come (the server is stopping).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }
}

/// One open stream; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    streams: Arc<Streams>,
    user_id: i64,
    closing: watch::Receiver<bool>,
}

impl Slot {
    /// Resolves once the server stops.
    pub async fn closed(&mut self) {
        let _ = self.closing.wait_for(|c| *c).await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("live streams");
        if let Some(n) = open.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_the_bound_and_a_dropped_slot_frees_its_place() {
        let streams = Streams::new(2);
        let a = streams.open(1).unwrap();
        let _b = streams.open(1).unwrap();
        assert!(streams.open(1).is_none());
        assert!(streams.open(2).is_some(), "another user has their own places");
        drop(a);
        assert_eq!(streams.count(1), 1);
        assert!(streams.open(1).is_some());
    }

    #[tokio::test]
    async fn closing_ends_slots_opened_before_and_after() {
        let streams = Streams::new(4);
        let mut before = streams.open(1).unwrap();
        streams.close_all();
        let mut after = streams.open(1).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            before.closed().await;
            after.closed().await;
        })
        .await
        .expect("both end");
    }
}
