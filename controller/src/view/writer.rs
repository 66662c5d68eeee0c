//! The one writer of the view: everyone changes the inputs, and the view published is always
//! `derive`d from all of them.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::view::derive::{derive, ViewInputs};
use crate::view::View;

/// Cheap to clone: the service, the supervisor and the controller each hold one.
#[derive(Clone)]
pub struct ViewWriter {
    inputs: Arc<Mutex<ViewInputs>>,
    view: watch::Sender<View>,
}

impl ViewWriter {
    pub fn new(inputs: ViewInputs) -> ViewWriter {
        let view = watch::channel(derive(&inputs)).0;
        ViewWriter { inputs: Arc::new(Mutex::new(inputs)), view }
    }

    pub fn subscribe(&self) -> watch::Receiver<View> {
        self.view.subscribe()
    }

    /// Changes the inputs and publishes the view derived from them. Every call notifies, also
    /// when nothing changed: a watcher counts attempts by it (each failed start is one).
    pub fn update(&self, change: impl FnOnce(&mut ViewInputs)) {
        // Held while sending, so views go out in the order their inputs changed. Nothing in
        // here can leave the inputs half-changed for good: the next update derives anew.
        let mut inputs = self.inputs.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut inputs);
        self.view.send_replace(derive(&inputs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_update_publishes_the_view_derived_from_all_inputs() {
        let writer = ViewWriter::new(ViewInputs { app_version: "1.0".into(), ..Default::default() });
        let mut view = writer.subscribe();
        assert_eq!(view.borrow_and_update().app_version, "1.0");
        writer.clone().update(|i| i.want_connected = true);
        assert!(view.has_changed().unwrap());
        let v = view.borrow_and_update().clone();
        assert_eq!((v.app_version.as_str(), v.want_connected), ("1.0", true), "one change, the rest kept");
        writer.update(|_| {});
        assert!(view.has_changed().unwrap(), "an update without a change still counts");
    }
}
