//! Browser side of the pages' scripts: charts (`/market-chart.js`, `/backtest-chart.js`) and the strategy
//! editor (`/strategy-editor.js`). Each script defines `window.<global>.mountAll()`, which draws or mounts
//! every matching element of the page. After hydration (or a client-side navigation) a page calls
//! [`mount_script`]: if the script is loaded it runs `mountAll()`, otherwise it loads the script, which mounts
//! everything when it has loaded. Same-origin scripts, so the Content-Security-Policy allows them.

use wasm_bindgen::{JsCast, JsValue};

/// Runs `window[global].mountAll()`, loading `src` first if needed.
pub fn mount_script(global: &str, src: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let mount_all = js_sys::Reflect::get(&window, &JsValue::from_str(global))
        .ok()
        .filter(|api| api.is_object())
        .and_then(|api| js_sys::Reflect::get(&api, &JsValue::from_str("mountAll")).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(f) = mount_all {
        let _ = f.call0(&JsValue::NULL);
        return;
    }
    let Some(document) = window.document() else {
        return;
    };
    let id = format!("script-{global}");
    // Already loading: the script mounts everything when it has loaded.
    if document.get_element_by_id(&id).is_some() {
        return;
    }
    let (Ok(script), Some(head)) = (document.create_element("script"), document.head()) else {
        return;
    };
    let _ = script.set_attribute("id", &id);
    let _ = script.set_attribute("src", src);
    let _ = head.append_child(&script);
}

/// Draws (or redraws, when their `data-src` changed) the Market data charts on the page.
pub fn mount_charts() {
    mount_script("vortexCharts", "/market-chart.js");
}

/// Draws the backtest charts, compare charts and live run status widgets on the page.
pub fn mount_backtest() {
    mount_script("vortexBacktest", "/backtest-chart.js");
}

/// Mounts the code editor on every `textarea[data-strategy-editor]`.
pub fn mount_editor() {
    mount_script("vortexEditor", "/strategy-editor.js");
}
