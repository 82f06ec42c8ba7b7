//! The browser side of the live socket: opens `/api/ws`, feeds [`Session`] with what happens, dispatches the
//! store actions it returns and sends the frames it asks for. Reconnects with backoff after a close, at once
//! when the page becomes visible, is shown again or goes online, and when the heartbeat deadline passes.

use std::cell::RefCell;
use std::rc::Rc;

use agentfarm_shared::ws::ClientFrame;
use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{MessageEvent, WebSocket};
use yew::Callback;

use super::session::{self, Session};
use crate::state::{Action, ConnState, ToastKind};

/// How often the heartbeat deadline is checked, in milliseconds.
const WATCHDOG_MS: u32 = 5_000;

/// The app's one live connection. Cheap to clone; equal when it is the same connection.
#[derive(Clone)]
pub struct LiveClient {
    inner: Rc<RefCell<Inner>>,
}

impl PartialEq for LiveClient {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

struct Inner {
    session: Session,
    dispatch: Callback<Action>,
    socket: Option<Socket>,
    retry: Option<Timeout>,
    _watchdog: Option<Interval>,
    _listeners: Vec<EventListener>,
}

/// An open (or opening) socket and the handlers that must live as long as it does.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
}

impl Socket {
    fn shut(self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        // Closing an already closed socket is harmless.
        let _ = self.ws.close();
    }
}

impl LiveClient {
    /// Starts the connection and its watchdogs; actions go to `dispatch`.
    pub fn start(dispatch: Callback<Action>) -> Self {
        let client = LiveClient {
            inner: Rc::new(RefCell::new(Inner {
                session: Session::default(),
                dispatch,
                socket: None,
                retry: None,
                _watchdog: None,
                _listeners: Vec::new(),
            })),
        };
        client.install_watchers();
        client.connect();
        client
    }

    /// A view wants `run_id`'s log (call [`LiveClient::unsubscribe`] when it goes away).
    pub fn subscribe(&self, run_id: &str) {
        let frame = self.inner.borrow_mut().session.subscribe(run_id);
        if let Some(frame) = frame {
            self.send(&frame);
        }
    }

    /// A view no longer wants `run_id`'s log.
    pub fn unsubscribe(&self, run_id: &str) {
        let frame = self.inner.borrow_mut().session.unsubscribe(run_id);
        if let Some(frame) = frame {
            self.send(&frame);
        }
    }

    fn send(&self, frame: &ClientFrame) {
        let inner = self.inner.borrow();
        if let Some(socket) = &inner.socket
            && socket.ws.send_with_str(&session::encode(frame)).is_err()
        {
            // The close handler reconnects and re-subscribes.
            let _ = socket.ws.close();
        }
    }

    fn dispatch(&self, actions: Vec<Action>) {
        let dispatch = self.inner.borrow().dispatch.clone();
        for action in actions {
            dispatch.emit(action);
        }
    }

    fn connect(&self) {
        let (old, action) = {
            let mut inner = self.inner.borrow_mut();
            inner.retry = None;
            let action = inner
                .session
                .connecting(crate::time::now().timestamp_millis() as f64);
            (inner.socket.take(), action)
        };
        if let Some(old) = old {
            old.shut();
        }
        self.dispatch(vec![action]);

        let Some(url) = page_socket_url() else {
            self.closed();
            return;
        };
        let Ok(ws) = WebSocket::new(&url) else {
            self.closed();
            return;
        };

        let on_open = {
            let client = self.clone();
            Closure::<dyn FnMut()>::new(move || client.opened())
        };
        let on_message = {
            let client = self.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(text) = event.data().as_string() {
                    client.message(&text);
                }
            })
        };
        let on_close = {
            let client = self.clone();
            Closure::<dyn FnMut()>::new(move || client.closed())
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.inner.borrow_mut().socket = Some(Socket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    fn opened(&self) {
        let (action, frames) = self
            .inner
            .borrow_mut()
            .session
            .opened(crate::time::now().timestamp_millis() as f64);
        for frame in &frames {
            self.send(frame);
        }
        self.dispatch(vec![action]);
    }

    fn message(&self, text: &str) {
        let actions = match session::decode(text) {
            Ok(frame) => self
                .inner
                .borrow_mut()
                .session
                .received(frame, crate::time::now().timestamp_millis() as f64),
            Err(error) => vec![Action::Toast(ToastKind::Error, error)],
        };
        self.dispatch(actions);
    }

    /// The socket closed or could not open: schedule the next attempt.
    fn closed(&self) {
        let (old, action, delay) = {
            let mut inner = self.inner.borrow_mut();
            let (action, delay) = inner.session.closed();
            (inner.socket.take(), action, delay)
        };
        if let Some(old) = old {
            old.shut();
        }
        let client = self.clone();
        let retry = Timeout::new(delay, move || client.connect());
        self.inner.borrow_mut().retry = Some(retry);
        self.dispatch(vec![action]);
    }

    /// The page is back: reconnect at once if the socket is down (or silent too long), else check it is alive.
    fn wake(&self) {
        let (conn, stale) = {
            let inner = self.inner.borrow();
            let now = crate::time::now().timestamp_millis() as f64;
            (inner.session.conn(), inner.session.is_stale(now))
        };
        match conn {
            ConnState::Offline => {
                self.inner.borrow_mut().session.woke();
                self.connect();
            }
            _ if stale => self.connect(),
            ConnState::Live => self.send(&ClientFrame::Ping),
            // An attempt is under way (e.g. `pageshow` right after start): let it finish.
            ConnState::Connecting => {}
        }
    }

    fn install_watchers(&self) {
        let watchdog = {
            let client = self.clone();
            Interval::new(WATCHDOG_MS, move || {
                let stale = client
                    .inner
                    .borrow()
                    .session
                    .is_stale(crate::time::now().timestamp_millis() as f64);
                if stale {
                    client.connect();
                }
            })
        };
        let mut listeners = Vec::new();
        if let Some(window) = web_sys::window() {
            for event in ["pageshow", "online"] {
                let client = self.clone();
                listeners.push(EventListener::new(&window, event, move |_| client.wake()));
            }
            if let Some(document) = window.document() {
                let client = self.clone();
                let doc = document.clone();
                listeners.push(EventListener::new(&document, "visibilitychange", move |_| {
                    if doc.visibility_state() == web_sys::VisibilityState::Visible {
                        client.wake();
                    }
                }));
            }
        }
        let mut inner = self.inner.borrow_mut();
        inner._watchdog = Some(watchdog);
        inner._listeners = listeners;
    }
}

/// `ws(s)://<this page's host>/api/ws`.
fn page_socket_url() -> Option<String> {
    let location = web_sys::window()?.location();
    Some(session::socket_url(
        &location.protocol().ok()?,
        &location.host().ok()?,
    ))
}
