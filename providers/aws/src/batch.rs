//! Look-ups by id, coalesced into describe calls that carry many ids.
//!
//! A thousand targets inspected at once would otherwise make a thousand DescribeInstances
//! calls, each drawing a token from EC2's describe bucket. The batcher sends the first look-up at
//! once. Look-ups that arrive while a call is in flight, or waits for its token, go together in
//! the next call. A look-up never joins a call already sent, so what it reads was read after
//! it asked.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use contain_core::{ActionError, ErrorKind};
use tokio::sync::oneshot;

/// The result of one batch call: the values found, by id. An id the call did not return is
/// absent.
type Fetched<V> = Result<HashMap<String, V>, ActionError>;
type Fetch<V> = Arc<dyn Fn(Vec<String>) -> Pin<Box<dyn Future<Output = Fetched<V>> + Send>> + Send + Sync>;
type Waiter<V> = (String, oneshot::Sender<Result<Option<V>, ActionError>>);

pub(crate) struct Batcher<V> {
    max_ids: usize,
    fetch: Fetch<V>,
    queue: Arc<Mutex<Queue<V>>>,
}

struct Queue<V> {
    waiting: Vec<Waiter<V>>,
    /// True while a task sends the waiting look-ups.
    sending: bool,
}

impl<V: Clone + Send + 'static> Batcher<V> {
    /// Creates a batcher whose `fetch` makes one call for at most `max_ids` distinct ids.
    pub(crate) fn new<F, Fut>(max_ids: usize, fetch: F) -> Self
    where
        F: Fn(Vec<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Fetched<V>> + Send + 'static,
    {
        Batcher {
            max_ids: max_ids.max(1),
            fetch: Arc::new(move |ids| Box::pin(fetch(ids))),
            queue: Arc::new(Mutex::new(Queue { waiting: Vec::new(), sending: false })),
        }
    }

    /// Returns what a call read about `id`, or `None` when the call did not return it.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<V>, ActionError> {
        let (sender, receiver) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().expect("batch queue lock");
            queue.waiting.push((id.to_string(), sender));
            !std::mem::replace(&mut queue.sending, true)
        };
        if start {
            tokio::spawn(send_waiting(self.queue.clone(), self.fetch.clone(), self.max_ids));
        }
        receiver
            .await
            .unwrap_or_else(|_| Err(ActionError::new(ErrorKind::Transient, format!("the batched look-up of {id} ended without a result: try again"))))
    }
}

/// Sends the waiting look-ups, in calls of at most `max_ids` ids sent together, until none waits.
async fn send_waiting<V: Clone + Send + 'static>(queue: Arc<Mutex<Queue<V>>>, fetch: Fetch<V>, max_ids: usize) {
    loop {
        let waiting = {
            let mut queue = queue.lock().expect("batch queue lock");
            if queue.waiting.is_empty() {
                queue.sending = false;
                return;
            }
            std::mem::take(&mut queue.waiting)
        };

        let mut ids: Vec<String> = waiting.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        let calls = ids.chunks(max_ids).map(|chunk| fetch(chunk.to_vec()));
        let results = futures::future::join_all(calls).await;

        let mut found: HashMap<String, V> = HashMap::new();
        let mut failed: HashMap<String, ActionError> = HashMap::new();
        for (chunk, result) in ids.chunks(max_ids).zip(results) {
            match result {
                Ok(values) => found.extend(values),
                Err(error) => failed.extend(chunk.iter().map(|id| (id.clone(), error.clone()))),
            }
        }
        for (id, sender) in waiting {
            let result = match failed.get(&id) {
                Some(error) => Err(error.clone()),
                None => Ok(found.get(&id).cloned()),
            };
            // The caller of the look-up may have gone away, so a failed send is ignored.
            let _ = sender.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Builds a batcher whose fetch returns every id but `missing` and counts its calls and the
    /// largest batch.
    fn counting(calls: Arc<AtomicUsize>, largest: Arc<AtomicUsize>, missing: &'static str) -> Batcher<String> {
        Batcher::new(3, move |ids: Vec<String>| {
            let calls = calls.clone();
            let largest = largest.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                largest.fetch_max(ids.len(), Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok(ids.into_iter().filter(|id| id != missing).map(|id| (id.clone(), format!("value of {id}"))).collect())
            }
        })
    }

    #[tokio::test]
    async fn concurrent_lookups_share_calls() {
        let calls = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(AtomicUsize::new(0));
        let batcher = counting(calls.clone(), largest.clone(), "i-gone");
        let ids: Vec<String> = (0..10).map(|n| format!("i-{n}")).chain(["i-gone".to_string(), "i-3".to_string()]).collect();

        let results = futures::future::join_all(ids.iter().map(|id| batcher.get(id))).await;

        for (id, result) in ids.iter().zip(&results) {
            let expected = if id == "i-gone" { None } else { Some(format!("value of {id}")) };
            assert_eq!(result.as_ref().unwrap(), &expected, "result for {id}");
        }
        // The sending task ran after all twelve look-ups, so the eleven distinct ids fill four
        // calls of at most three. The repeated id adds no call.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(largest.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn lookups_during_a_call_wait_for_the_next() {
        let calls = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(AtomicUsize::new(0));
        let batcher = Arc::new(counting(calls.clone(), largest.clone(), ""));
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.get("i-first").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let later = futures::future::join_all(["i-1", "i-2", "i-first"].map(|id| batcher.get(id))).await;

        assert_eq!(first.await.unwrap().unwrap().as_deref(), Some("value of i-first"));
        assert!(later.iter().all(|result| result.as_ref().is_ok_and(Option::is_some)));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one call for the first, one for the three that came while it ran");
        assert_eq!(largest.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn lookup_after_a_call_ends_is_sent_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let batcher = counting(calls.clone(), Arc::new(AtomicUsize::new(0)), "");
        batcher.get("i-1").await.unwrap();
        batcher.get("i-1").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "a finished call's result is not reused");
    }

    #[tokio::test]
    async fn failed_call_fails_each_of_its_lookups() {
        let batcher: Batcher<String> = Batcher::new(10, |_ids: Vec<String>| async {
            Err(ActionError::new(ErrorKind::Throttled, "RequestLimitExceeded"))
        });
        let (a, b) = tokio::join!(batcher.get("i-1"), batcher.get("i-2"));
        assert_eq!(a.unwrap_err().kind, ErrorKind::Throttled);
        assert_eq!(b.unwrap_err().kind, ErrorKind::Throttled);
    }
}
