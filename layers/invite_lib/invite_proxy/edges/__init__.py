"""The edges: what a handler touches. Settings from the environment, the wiring that
builds services from them, answers made (http_responses), and SnapStart's hooks."""
