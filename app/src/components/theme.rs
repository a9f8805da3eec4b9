//! Dark/light theme switch. Without JavaScript the page follows the system preference; once hydrated the
//! button switches themes and remembers the choice in `localStorage`.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Theme {
    Dark,
    Light,
}

impl Theme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dark => "dark",
            Self::Light => "light",
        }
    }
}

#[component]
pub fn ThemeToggle() -> impl IntoView {
    // Unknown until hydrated: the server cannot see the browser's preference.
    let theme = RwSignal::new(None::<Theme>);

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if theme.get_untracked().is_none() {
            theme.set(Some(current_browser_theme()));
        }
    });

    let toggle = move |_| {
        let next = match theme.get_untracked() {
            Some(Theme::Dark) => Theme::Light,
            Some(Theme::Light) => Theme::Dark,
            None => Theme::Dark,
        };
        theme.set(Some(next));
        #[cfg(feature = "hydrate")]
        apply_theme(next);
    };

    let label = move || match theme.get() {
        Some(Theme::Dark) => "Switch to light theme",
        Some(Theme::Light) => "Switch to dark theme",
        None => "Switch theme",
    };
    view! {
        <button
            id="theme-toggle"
            class="icon-button"
            type="button"
            on:click=toggle
            aria-label=label
            title=label
            data-theme-state=move || theme.get().map(Theme::as_str).unwrap_or("system")
        >
            <span aria-hidden="true">{move || match theme.get() {
                Some(Theme::Dark) => "☾",
                Some(Theme::Light) => "☀",
                None => "◐",
            }}</span>
        </button>
    }
}

#[cfg(feature = "hydrate")]
fn current_browser_theme() -> Theme {
    let doc = document();
    if let Some(t) = doc
        .document_element()
        .and_then(|el| el.get_attribute("data-theme"))
    {
        return if t == "light" {
            Theme::Light
        } else {
            Theme::Dark
        };
    }
    let prefers_light = window()
        .match_media("(prefers-color-scheme: light)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches());
    if prefers_light {
        Theme::Light
    } else {
        Theme::Dark
    }
}

#[cfg(feature = "hydrate")]
fn apply_theme(theme: Theme) {
    if let Some(el) = document().document_element() {
        let _ = el.set_attribute("data-theme", theme.as_str());
    }
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item("vortex-theme", theme.as_str());
    }
}
