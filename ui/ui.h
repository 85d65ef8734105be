// ui/ui.h
//
// The built-in web UI of vigild: an expression box with metric-name
// autocomplete, a table of instant-query results and a graph of range-query
// results, all talking to the node's own Prometheus HTTP API. Plain HTML, CSS
// and JavaScript from ui/static/, embedded at build time; nothing is fetched
// from anywhere but the node.
#ifndef VIGIL_UI_UI_H_
#define VIGIL_UI_UI_H_

namespace httplib {
class Server;
}  // namespace httplib

namespace vigil::ui {

// Serves the UI: GET / and GET /ui/<asset>. Content types set; assets
// embedded at build time. Unknown assets get 404 with a plain-text body.
// Thread-safe: the handlers only read immutable data.
void RegisterUiRoutes(httplib::Server* server);

}  // namespace vigil::ui

#endif  // VIGIL_UI_UI_H_
