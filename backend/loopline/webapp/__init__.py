"""The web app (pwa/) as the server delivers it: one build per start-up, its routes, the API docs UI."""
