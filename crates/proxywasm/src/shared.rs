//! Process-wide shared data (key-value with compare-and-swap) and shared queues, keyed by VM id
//! as in Envoy, so VMs of one plugin on every worker, and the VMs of a reloaded plugin, see the
//! same values and queues.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a shared-data or queue operation failed, as an ABI status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedError {
    /// No such key or queue.
    NotFound,
    /// The CAS does not match the key's current one.
    CasMismatch,
    /// The queue is empty.
    Empty,
}

/// Shared data and shared queues of every plugin in the process. Create one per proxy and pass
/// it to every [`crate::Plugin::load`]; it outlives plugin reloads.
#[derive(Default)]
pub struct SharedState {
    data: Mutex<Data>,
    queues: Mutex<Queues>,
}

#[derive(Default)]
struct Data {
    /// `(vm_id, key)` to `(value, cas)`.
    values: HashMap<(String, String), (Vec<u8>, u32)>,
    /// The last CAS handed out; CAS values are never 0 (0 means "no CAS" in the ABI).
    last_cas: u32,
}

#[derive(Default)]
struct Queues {
    /// `(vm_id, name)` to queue id.
    by_name: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    last_id: u32,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Vec<u8>>,
    /// Items arrived since a VM was last told.
    ready: bool,
}

/// Most items one queue holds; enqueueing more drops the oldest (queues are bounded).
const QUEUE_CAPACITY: usize = 64 * 1024;

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = lock(&self.data);
        let queues = lock(&self.queues);
        f.debug_struct("SharedState").field("keys", &data.values.len()).field("queues", &queues.queues.len()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic cannot happen while these locks are held (no guest code runs under them).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SharedState {
    /// An empty state.
    pub fn new() -> Arc<SharedState> {
        Arc::new(SharedState::default())
    }

    /// The value of `key` for VM id `vm_id` and its CAS.
    pub fn get(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.data).values.get(&(vm_id.to_owned(), key.to_owned())).cloned()
    }

    /// Sets `key`; with `cas` other than 0, only if the key's CAS is still `cas` (a missing key
    /// is set whatever the CAS, as in Envoy). Returns the new CAS.
    pub fn set(&self, vm_id: &str, key: &str, value: Vec<u8>, cas: u32) -> Result<u32, SharedError> {
        let mut data = lock(&self.data);
        data.last_cas = data.last_cas.checked_add(1).unwrap_or(1);
        let new_cas = data.last_cas;
        match data.values.get_mut(&(vm_id.to_owned(), key.to_owned())) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    return Err(SharedError::CasMismatch);
                }
                *entry = (value, new_cas);
            }
            None => {
                data.values.insert((vm_id.to_owned(), key.to_owned()), (value, new_cas));
            }
        }
        Ok(new_cas)
    }

    /// Every shared-data entry of VM id `vm_id` as `(key, value, cas)`, sorted by key (for admin
    /// dumps).
    pub fn entries(&self, vm_id: &str) -> Vec<(String, Vec<u8>, u32)> {
        let data = lock(&self.data);
        let mut entries: Vec<_> = data
            .values
            .iter()
            .filter(|((vm, _), _)| vm == vm_id)
            .map(|((_, key), (value, cas))| (key.clone(), value.clone(), *cas))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// How many items queue `id` holds, if it exists.
    pub fn queue_len(&self, id: u32) -> Option<usize> {
        lock(&self.queues).queues.get(&id).map(|q| q.items.len())
    }

    /// Registers (or finds) the queue `name` of VM id `vm_id` and returns its id (never 0).
    pub fn register_queue(&self, vm_id: &str, name: &str) -> u32 {
        let mut queues = lock(&self.queues);
        let key = (vm_id.to_owned(), name.to_owned());
        if let Some(&id) = queues.by_name.get(&key) {
            return id;
        }
        queues.last_id += 1;
        let id = queues.last_id;
        queues.by_name.insert(key, id);
        queues.queues.insert(id, Queue::default());
        id
    }

    /// The id of queue `name` of VM id `vm_id`.
    pub fn resolve_queue(&self, vm_id: &str, name: &str) -> Option<u32> {
        lock(&self.queues).by_name.get(&(vm_id.to_owned(), name.to_owned())).copied()
    }

    /// Appends an item to a queue and marks it ready.
    pub fn enqueue(&self, id: u32, item: Vec<u8>) -> Result<(), SharedError> {
        let mut queues = lock(&self.queues);
        let queue = queues.queues.get_mut(&id).ok_or(SharedError::NotFound)?;
        if queue.items.len() >= QUEUE_CAPACITY {
            queue.items.pop_front();
        }
        queue.items.push_back(item);
        queue.ready = true;
        Ok(())
    }

    /// Takes the oldest item of a queue.
    pub fn dequeue(&self, id: u32) -> Result<Vec<u8>, SharedError> {
        let mut queues = lock(&self.queues);
        let queue = queues.queues.get_mut(&id).ok_or(SharedError::NotFound)?;
        queue.items.pop_front().ok_or(SharedError::Empty)
    }

    /// Of `ids`, those that got items since last taken, clearing their mark.
    pub(crate) fn take_ready(&self, ids: &[u32]) -> Vec<u32> {
        let mut queues = lock(&self.queues);
        ids.iter()
            .copied()
            .filter(|id| queues.queues.get_mut(id).is_some_and(|q| std::mem::take(&mut q.ready)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas() {
        let s = SharedState::new();
        assert_eq!(s.get("vm", "k"), None);
        let c1 = s.set("vm", "k", b"1".to_vec(), 0).unwrap();
        assert_ne!(c1, 0);
        assert_eq!(s.set("vm", "k", b"2".to_vec(), c1 + 7), Err(SharedError::CasMismatch));
        let c2 = s.set("vm", "k", b"2".to_vec(), c1).unwrap();
        assert_eq!(s.get("vm", "k"), Some((b"2".to_vec(), c2)));
        // Keys are per VM id.
        assert_eq!(s.get("other", "k"), None);
        s.set("other", "a", b"x".to_vec(), 0).unwrap();
        assert_eq!(s.entries("vm"), vec![("k".to_owned(), b"2".to_vec(), c2)]);
    }

    #[test]
    fn queues() {
        let s = SharedState::new();
        let q = s.register_queue("vm", "q");
        assert_eq!(s.register_queue("vm", "q"), q);
        assert_eq!(s.resolve_queue("vm", "q"), Some(q));
        assert_eq!(s.resolve_queue("vm", "other"), None);
        assert_eq!(s.dequeue(q), Err(SharedError::Empty));
        assert_eq!(s.enqueue(q + 1, vec![]), Err(SharedError::NotFound));
        s.enqueue(q, b"a".to_vec()).unwrap();
        assert_eq!(s.queue_len(q), Some(1));
        assert_eq!(s.take_ready(&[q]), vec![q]);
        assert_eq!(s.take_ready(&[q]), Vec::<u32>::new());
        assert_eq!(s.dequeue(q), Ok(b"a".to_vec()));
    }
}
