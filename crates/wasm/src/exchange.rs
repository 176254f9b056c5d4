//! The HTTP exchange of the run in progress, as the `http_*` imports reach it.
//!
//! wasmtime keeps host state in the store, which must be `'static`, while the sidecar lends an
//! exchange only for one call (`&mut dyn HttpExchange`). [`ExchangeSlot`] bridges the two: for
//! exactly the duration of one guest call it holds a pointer to the exchange with its lifetime
//! erased, installed and cleared by [`Lent`], a guard that owns the store's mutable borrow. The
//! imports reach the exchange only through [`ExchangeSlot::parts`], which borrows the slot, and
//! so only while the guest call (and thus the loan) is in progress.
#![allow(unsafe_code, reason = "erases the lifetime of an exchange lent for one guest call; two blocks, documented")]

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use duet_helpers::http::{HttpExchange, HttpRunState};
use wasmtime::Store;

use crate::host::Host;

/// The exchange and run state of the http run in progress, if any.
pub(crate) struct ExchangeSlot {
    state: HttpRunState,
    /// Valid for reads and writes, and not otherwise borrowed, while the [`Lent`] guard that
    /// installed it lives (see [`Lent::new`]).
    exchange: NonNull<dyn HttpExchange>,
}

// SAFETY: the slot is installed and cleared by one `Lent` guard on the thread that lends the
// exchange, and read only by imports that run inside the guest call on that same thread; a
// store (and the slot with it) never moves to another thread while the guard lives, because the
// guard holds the store's only mutable borrow.
unsafe impl Send for ExchangeSlot {}

impl ExchangeSlot {
    /// The run state and the exchange, for one import call.
    pub(crate) fn parts(&mut self) -> (&mut HttpRunState, &mut dyn HttpExchange) {
        // SAFETY: the slot exists only while a `Lent` guard lends the exchange, which it borrows
        // mutably for the guard's whole life; the returned borrow is tied to `&mut self`, so no
        // two of them exist at once, and it ends before the import returns to the guest.
        let exchange = unsafe { self.exchange.as_mut() };
        (&mut self.state, exchange)
    }
}

/// A store with an exchange lent to it for one guest call. Dereferences to the store; dropping
/// it (also when unwinding) takes the exchange back.
pub(crate) struct Lent<'s, 'e> {
    store: &'s mut Store<Host>,
    _exchange: std::marker::PhantomData<&'e mut dyn HttpExchange>,
}

impl<'s, 'e> Lent<'s, 'e> {
    /// Lends `exchange` to the imports of `store` until the guard is dropped.
    pub(crate) fn new(store: &'s mut Store<Host>, state: HttpRunState, exchange: &'e mut dyn HttpExchange) -> Self {
        let exchange: NonNull<dyn HttpExchange + 'e> = NonNull::from(exchange);
        // SAFETY: only the trait object's lifetime bound changes (same layout). The pointer is
        // reachable only through the slot, which `Drop` clears before `'e` can end: the guard
        // holds `&'e mut` (through `PhantomData`) for its whole life.
        let exchange: NonNull<dyn HttpExchange + 'static> = unsafe { std::mem::transmute(exchange) };
        store.data_mut().http = Some(ExchangeSlot { state, exchange });
        Lent { store, _exchange: std::marker::PhantomData }
    }

    /// The run state so far.
    pub(crate) fn state(&self) -> Option<&HttpRunState> {
        self.store.data().http.as_ref().map(|slot| &slot.state)
    }
}

impl Deref for Lent<'_, '_> {
    type Target = Store<Host>;
    fn deref(&self) -> &Store<Host> {
        self.store
    }
}

impl DerefMut for Lent<'_, '_> {
    fn deref_mut(&mut self) -> &mut Store<Host> {
        self.store
    }
}

impl Drop for Lent<'_, '_> {
    fn drop(&mut self) {
        self.store.data_mut().http = None;
    }
}
