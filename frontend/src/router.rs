//! A small router on the History API (yew-router cost more wasm than the whole feature is worth here): the
//! routes and their paths (pure, tested on the host), a context with the current route, `navigate`, and a
//! [`Link`] that is a real `<a href>` (so long-press, new tab and copy link work).

use gloo_events::EventListener;
use wasm_bindgen::JsValue;
use yew::prelude::*;

/// Every screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Active and recent runs (`/`).
    Agents,
    /// One run (`/runs/:id`).
    Run {
        /// The run's id.
        id: String,
    },
    /// Configs (`/configs`).
    Configs,
    /// A new config (`/configs/new`).
    NewConfig,
    /// One config (`/configs/:id`).
    EditConfig {
        /// The config's id.
        id: String,
    },
    /// Server facts and the connection (`/settings`).
    Settings,
    /// Anything else.
    NotFound,
}

impl Route {
    /// The route of a path (query and fragment ignored, a trailing slash allowed).
    pub fn parse(path: &str) -> Route {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let id = |s: &str| decode(s).filter(|id| !id.is_empty());
        match segments.as_slice() {
            [] => Route::Agents,
            ["runs", run] => id(run).map_or(Route::NotFound, |id| Route::Run { id }),
            ["configs"] => Route::Configs,
            ["configs", "new"] => Route::NewConfig,
            ["configs", config] => id(config).map_or(Route::NotFound, |id| Route::EditConfig { id }),
            ["settings"] => Route::Settings,
            _ => Route::NotFound,
        }
    }

    /// The route's path.
    pub fn path(&self) -> String {
        match self {
            Route::Agents => "/".to_owned(),
            Route::Run { id } => format!("/runs/{}", crate::api::encode(id)),
            Route::Configs => "/configs".to_owned(),
            Route::NewConfig => "/configs/new".to_owned(),
            Route::EditConfig { id } => format!("/configs/{}", crate::api::encode(id)),
            Route::Settings => "/settings".to_owned(),
            Route::NotFound => "/404".to_owned(),
        }
    }

    /// The screen's title.
    pub fn title(&self) -> &'static str {
        match self {
            Route::Agents => "Agents",
            Route::Run { .. } => "Run",
            Route::Configs => "Configs",
            Route::NewConfig => "New config",
            Route::EditConfig { .. } => "Config",
            Route::Settings => "Settings",
            Route::NotFound => "Not found",
        }
    }

    /// The tab a route belongs to.
    pub fn tab(&self) -> Option<Route> {
        match self {
            Route::Agents | Route::Run { .. } => Some(Route::Agents),
            Route::Configs | Route::NewConfig | Route::EditConfig { .. } => Some(Route::Configs),
            Route::Settings => Some(Route::Settings),
            Route::NotFound => None,
        }
    }
}

/// Percent-decodes a path segment; `None` when it is not valid UTF-8 after decoding.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The router as components see it.
#[derive(Clone, PartialEq)]
pub struct Navigator {
    /// The current route.
    pub route: Route,
    set: Callback<(Route, bool)>,
}

impl Navigator {
    /// Goes to a route (a new history entry).
    pub fn push(&self, route: &Route) {
        self.set.emit((route.clone(), false));
    }

    /// Goes to a route in place of the current history entry.
    pub fn replace(&self, route: &Route) {
        self.set.emit((route.clone(), true));
    }
}

/// The router from the context.
#[hook]
pub fn use_navigator() -> Option<Navigator> {
    use_context::<Navigator>()
}

fn current_route() -> Route {
    web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .map_or(Route::Agents, |path| Route::parse(&path))
}

/// Props of [`Router`].
#[derive(Properties, PartialEq)]
pub struct RouterProps {
    /// The app.
    pub children: Html,
}

/// Keeps the current route in step with the address bar and provides [`Navigator`].
#[component]
pub fn Router(props: &RouterProps) -> Html {
    let route = use_state(current_route);
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            let listener = web_sys::window()
                .map(|w| EventListener::new(&w, "popstate", move |_| route.set(current_route())));
            move || drop(listener)
        });
    }
    let set = {
        let route = route.clone();
        Callback::from(move |(next, replace): (Route, bool)| {
            if let Some(window) = web_sys::window() {
                if let Ok(history) = window.history() {
                    let path = next.path();
                    let _ = if replace {
                        history.replace_state_with_url(&JsValue::NULL, "", Some(&path))
                    } else {
                        history.push_state_with_url(&JsValue::NULL, "", Some(&path))
                    };
                }
                window.scroll_to_with_x_and_y(0.0, 0.0);
            }
            route.set(next);
        })
    };
    let navigator = Navigator {
        route: (*route).clone(),
        set,
    };
    html! {
        <ContextProvider<Navigator> context={navigator}>{ props.children.clone() }</ContextProvider<Navigator>>
    }
}

/// Props of [`Link`].
#[derive(Properties, PartialEq)]
pub struct LinkProps {
    /// Where it goes.
    pub to: Route,
    /// CSS classes.
    #[prop_or_default]
    pub classes: Option<AttrValue>,
    /// An element id.
    #[prop_or_default]
    pub id: Option<AttrValue>,
    /// `aria-current="page"` when set.
    #[prop_or_default]
    pub current: bool,
    /// The content.
    #[prop_or_default]
    pub children: Html,
}

/// An `<a href>` that navigates in the app (plain clicks only; modified clicks keep the browser's behaviour).
#[component]
pub fn Link(props: &LinkProps) -> Html {
    let navigator = use_navigator();
    let onclick = {
        let to = props.to.clone();
        Callback::from(move |e: MouseEvent| {
            if e.button() != 0 || e.meta_key() || e.ctrl_key() || e.shift_key() || e.alt_key() {
                return;
            }
            if let Some(navigator) = &navigator {
                e.prevent_default();
                navigator.push(&to);
            }
        })
    };
    html! {
        <a href={props.to.path()} id={props.id.clone()} class={props.classes.clone()}
           aria-current={props.current.then_some("page")} {onclick}>
            { props.children.clone() }
        </a>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let routes = [
            Route::Agents,
            Route::Run { id: "01jabc".into() },
            Route::Configs,
            Route::NewConfig,
            Route::EditConfig {
                id: "fix-bugs".into(),
            },
            Route::Settings,
        ];
        for route in routes {
            assert_eq!(Route::parse(&route.path()), route);
        }
        assert_eq!(Route::parse("/configs/"), Route::Configs);
        assert_eq!(Route::parse("/runs/x?y=1"), Route::Run { id: "x".into() });
        assert_eq!(Route::parse("/runs/a%20b"), Route::Run { id: "a b".into() });
        assert_eq!(Route::parse("/runs/%zz"), Route::NotFound);
        assert_eq!(Route::parse("/nope"), Route::NotFound);
        assert_eq!(Route::parse("/runs/a/b"), Route::NotFound);
    }
}
