//! Browser side of the Market data chart: runs `window.vortexCharts.mountAll()` from `/market-chart.js`,
//! loading that script first if this page has not yet (client-side navigation). The script itself loads the
//! vendored lightweight-charts bundle and draws every `[data-market-chart]` element from its `data-src` URL.

use wasm_bindgen::{JsCast, JsValue};

/// The same-origin script that draws charts (in `public/`).
const CHART_SCRIPT: &str = "/market-chart.js";

/// Draws (or redraws, when their `data-src` changed) the charts on the page.
pub fn mount_charts() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let mount_all = js_sys::Reflect::get(&window, &JsValue::from_str("vortexCharts"))
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
    // Already loading: the script mounts every chart when it has loaded.
    if document.get_element_by_id("vortex-chart-js").is_some() {
        return;
    }
    let (Ok(script), Some(head)) = (document.create_element("script"), document.head()) else {
        return;
    };
    let _ = script.set_attribute("id", "vortex-chart-js");
    let _ = script.set_attribute("src", CHART_SCRIPT);
    let _ = head.append_child(&script);
}
