#pragma once
// Version of the upstream public API this engine reproduces.
#define IX_WEBSOCKET_VERSION "11.4.6"
// This engine is ixws' own implementation; these macros let a binding detect it
// and use the extensions it offers beyond the upstream API.
#define IXWS_ENGINE_EXTENSIONS 1
#define IXWS_ENGINE_VERSION "0.1.0"
