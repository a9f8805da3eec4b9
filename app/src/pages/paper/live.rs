//! After hydration a run page listens to `/api/events/paper/{id}` (server-sent events): every `changed`
//! event bumps a counter that the page's resource depends on, so the page re-reads its data and redraws
//! without a reload. Without JavaScript nothing here runs; the page is current as of its request.

use leptos::prelude::*;

/// Opens the run's stream and bumps `changes` on every change, until the caller's owner is cleaned up.
#[cfg(feature = "hydrate")]
pub fn connect(id: String, changes: RwSignal<u32>) {
    use send_wrapper::SendWrapper;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{Event, EventSource};

    if id.is_empty() {
        return;
    }
    let Ok(source) = EventSource::new(&format!("/api/events/paper/{id}")) else {
        return;
    };
    let bump = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        changes.update(|n| *n = n.wrapping_add(1));
    });
    let _ = source.add_event_listener_with_callback("changed", bump.as_ref().unchecked_ref());
    let held = SendWrapper::new((source, bump));
    on_cleanup(move || held.0.close());
}

/// Without the browser there is no stream.
#[cfg(not(feature = "hydrate"))]
pub fn connect(_id: String, _changes: RwSignal<u32>) {}
