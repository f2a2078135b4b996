"""The invite library shared by every function: models, service and adapters.

Modules are imported directly (``from invite_proxy.services.lookup import ...``); this
package deliberately re-exports nothing so that importing it costs nothing.
"""
