//! The threads that hash and verify passwords.
//!
//! An argon2id check costs 19 MiB and tens of milliseconds of a core. On the async workers a handful
//! of parallel sign-ins would stall every page, websocket and job heartbeat; on tokio's blocking pool
//! they would still take both cores of a small host from the pages at the same priority. So they run
//! here: one thread per core, each at a low CPU priority ([`NICE`]), fed by one queue. A login storm
//! then queues here and gets little CPU while pages want it; a page load preempts it.

use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

type Work = Box<dyn FnOnce() + Send>;

/// The hashing threads' nice value: a tenth of a normal thread's share of a busy core (Linux weights
/// 110 against 1024). Not 19: on a host busy with other work, nice 19 (1.5%) would stretch a 40 ms check
/// of a real sign-in to seconds.
const NICE: libc::c_int = 10;

/// Runs `work` on a hashing thread; `None` if the pool is gone (it never stops while the process runs).
pub(super) async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Work = Box::new(move || {
        let _ = reply.send(work());
    });
    pool().lock().ok()?.send(job).ok()?;
    answer.await.ok()
}

fn pool() -> &'static Mutex<Sender<Work>> {
    static POOL: OnceLock<Mutex<Sender<Work>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("proxdesk-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job, not while it runs.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("a hashing thread");
        }
        Mutex::new(tx)
    })
}

/// Puts the calling thread at [`NICE`]. On Linux the nice value belongs to each thread, so only the
/// hashing threads are lowered; raising one's own nice needs no privilege. Elsewhere this is a no-op.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority on the calling thread's id only changes that thread's scheduling weight.
        let tid = unsafe { libc::gettid() };
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE) } != 0 {
            tracing::debug!("could not lower the hashing thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many jobs at once all get their answer, in any order.
    #[tokio::test]
    async fn every_job_gets_its_answer() {
        let jobs = (0..64u64).map(|i| run(move || i * 2));
        let answers: Vec<_> = futures_util::future::join_all(jobs).await;
        assert_eq!(answers, (0..64u64).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }

    /// The hashing threads run below normal priority, so pages preempt them.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_below_normal_priority() {
        // SAFETY: reads the calling thread's own nice value.
        let nice = run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }).await;
        assert_eq!(nice, Some(NICE));
    }
}
