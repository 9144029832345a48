"""The support console at /admin (INTERFACE §5): server-rendered pages for staff holding a role."""

from __future__ import annotations

from starlette.routing import Route


def console_routes() -> list[Route]:
    """The console's pages and form actions (the JSON API under /admin/api is routed apart)."""
    from idp.console import operators, people

    user = "/admin/users/{user_id}"
    return [
        Route("/admin", people.home, methods=["GET"]),
        Route(user, people.person, methods=["GET"]),
        Route(user + "/reset-mfa", people.reset_page, methods=["GET"]),
        Route(user + "/reset-mfa", people.reset_submit, methods=["POST"]),
        Route(user + "/unlock", people.unlock_submit, methods=["POST"]),
        Route(user + "/password-reset", people.reset_link_submit, methods=["POST"]),
        Route(user + "/sessions/revoke", people.sessions_submit, methods=["POST"]),
        Route(user + "/disable", people.disable_submit, methods=["POST"]),
        Route(user + "/enable", people.enable_submit, methods=["POST"]),
        # admin role only
        Route("/admin/clients", operators.clients_page, methods=["GET"]),
        Route("/admin/clients/new", operators.new_client_page, methods=["GET"]),
        Route("/admin/clients/new", operators.new_client_submit, methods=["POST"]),
        Route("/admin/clients/{client_id}", operators.client_page, methods=["GET"]),
        Route("/admin/clients/{client_id}", operators.client_submit, methods=["POST"]),
        Route("/admin/clients/{client_id}/secret", operators.secret_submit, methods=["POST"]),
        Route("/admin/keys", operators.keys_page, methods=["GET"]),
        Route("/admin/keys/rotate", operators.keys_rotate_submit, methods=["POST"]),
        Route("/admin/keys/{kid}/retire", operators.key_retire_submit, methods=["POST"]),
        Route("/admin/tokens", operators.tokens_page, methods=["GET"]),
        Route("/admin/tokens", operators.token_create_submit, methods=["POST"]),
        Route("/admin/tokens/{token_id}/revoke", operators.token_revoke_submit, methods=["POST"]),
        Route("/admin/audit", operators.audit_page, methods=["GET"]),
    ]
