//! `ringbuf`: a multi-producer, single-consumer ring of variable-length records with the
//! kernel's accounting.
//!
//! Positions are byte counters that only grow, as in Linux: a record reserved at position `pos`
//! takes `round_up(size + 8, 8)` bytes (an 8-byte header, then the data), and a reservation
//! fails when it would put the producer more than `size - 1` bytes ahead of the consumer.
//! Records reach the consumer in reservation order: draining stops at the oldest record still
//! reserved, and skips discarded ones.
//!
//! Linux maps the data pages twice in a row so a record that wraps past the end is still
//! contiguous. duet gets the same by making the buffer twice the ring's size: a record at
//! `pos` lives at offset `pos % size`, possibly running into the second half. At most one
//! record in flight can cross the end (they span less than `size` bytes in all), so no two
//! records in flight ever overlap.
//!
//! Record bookkeeping (position, length, state) lives under the mutex, not in the header bytes,
//! because programs can write into the buffer: a stray write can garble a record's data but
//! never the ring's structure. The header bytes are reserved and left unused.

use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::MapError;
use crate::arena::Arena;
use crate::sync::lock;

/// `BPF_RINGBUF_HDR_SZ`.
const HDR_SIZE: u64 = 8;
/// `RINGBUF_MAX_RECORD_SZ`: the largest record a reservation may ask for.
const MAX_RECORD_SIZE: u64 = (u32::MAX / 4) as u64;

pub(crate) struct RingBuf {
    data: Arena,
    /// Ring size in bytes (a power of two), minus one.
    mask: u64,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecordState {
    /// Reserved, not yet submitted: holds back every later record.
    Busy,
    /// Submitted: the consumer will see it.
    Committed,
    /// Discarded: the consumer skips it.
    Discarded,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    /// Position of the header.
    pos: u64,
    /// Bytes the record takes in the ring: header and data, rounded up to 8.
    len: u64,
    /// Bytes of data the program asked for.
    size: u64,
    state: RecordState,
}

struct State {
    consumer_pos: u64,
    producer_pos: u64,
    /// Records in flight (not yet consumed), in position order.
    records: VecDeque<Record>,
}

impl RingBuf {
    /// A ring of `size` bytes (a power of two multiple of the page size, checked by the caller).
    pub(crate) fn new(size: u32) -> Result<RingBuf, MapError> {
        let size = size as usize;
        let data = Arena::new(size.checked_mul(2).ok_or(MapError::NoMemory)?)?;
        let state = State { consumer_pos: 0, producer_pos: 0, records: VecDeque::new() };
        Ok(RingBuf { data, mask: size as u64 - 1, state: Mutex::new(state) })
    }

    pub(crate) fn region(&self) -> (NonNull<u8>, usize) {
        self.data.region()
    }

    /// Offset in the buffer of the data of the record at `pos`.
    fn data_offset(&self, pos: u64) -> usize {
        ((pos & self.mask) + HDR_SIZE) as usize
    }

    pub(crate) fn reserve(&self, size: u64) -> Option<NonNull<u8>> {
        let pos = reserve_locked(&mut lock(&self.state), self.mask, size)?;
        self.data.ptr(self.data_offset(pos), size as usize)
    }

    pub(crate) fn submit(&self, record: NonNull<u8>, discard: bool) -> Result<(), MapError> {
        let offset = self.data.offset_of(record).ok_or_else(not_reserved)? as u64;
        let ring_offset = offset.checked_sub(HDR_SIZE).filter(|o| o.is_multiple_of(8) && *o <= self.mask);
        let ring_offset = ring_offset.ok_or_else(not_reserved)?;
        let mut state = lock(&self.state);
        // Records in flight span less than the ring's size, so the offset names one position.
        let pos = state.consumer_pos + (ring_offset.wrapping_sub(state.consumer_pos) & self.mask);
        finish(&mut state, pos, discard)
    }

    /// Reserve, copy and submit under one lock acquisition: the copy is short, and one lock
    /// is cheaper than the two a separate reserve and submit take.
    pub(crate) fn output(&self, data: &[u8]) -> Result<(), MapError> {
        let mut state = lock(&self.state);
        let pos = reserve_locked(&mut state, self.mask, data.len() as u64).ok_or(MapError::RingFull)?;
        self.data.store(self.data_offset(pos), data);
        finish(&mut state, pos, false)
    }

    pub(crate) fn drain(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut state = lock(&self.state);
        while let Some(record) = state.records.front().copied() {
            if record.state == RecordState::Busy {
                break;
            }
            if record.state == RecordState::Committed {
                let mut bytes = vec![0; record.size as usize];
                self.data.load(self.data_offset(record.pos), &mut bytes);
                out.push(bytes);
            }
            state.records.pop_front();
            state.consumer_pos += record.len;
        }
        out
    }
}

/// Reserves a record of `size` bytes in a ring with `mask = size - 1`; returns its position.
fn reserve_locked(state: &mut State, mask: u64, size: u64) -> Option<u64> {
    if size > MAX_RECORD_SIZE {
        return None;
    }
    let len = (size + HDR_SIZE).next_multiple_of(8);
    let pos = state.producer_pos;
    if pos + len - state.consumer_pos > mask {
        return None;
    }
    state.producer_pos = pos + len;
    state.records.push_back(Record { pos, len, size, state: RecordState::Busy });
    Some(pos)
}

fn not_reserved() -> MapError {
    MapError::Invalid("not a reserved ring buffer record".into())
}

/// Submits or discards the busy record at `pos`.
fn finish(state: &mut State, pos: u64, discard: bool) -> Result<(), MapError> {
    let index = state.records.binary_search_by_key(&pos, |r| r.pos).map_err(|_| not_reserved())?;
    let record = &mut state.records[index];
    if record.state != RecordState::Busy {
        return Err(not_reserved());
    }
    record.state = if discard { RecordState::Discarded } else { RecordState::Committed };
    Ok(())
}
