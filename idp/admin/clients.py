"""Admin operations on relying-party clients."""

from __future__ import annotations

from idp.admin.api import Call, decode_cursor, encode_cursor, operation
from idp.admin.schemas import ClientCreate, ClientCreated, ClientOut, ClientPage, ClientPatch, ListQuery, SecretOut
from idp.services.clients import ClientInfo


def client_out(client: ClientInfo) -> ClientOut:
    return ClientOut.model_validate(client.public_view())


@operation("GET", "/clients", summary="List clients", query=ListQuery, response=ClientPage)
async def list_clients(call: Call) -> ClientPage:
    query: ListQuery = call.query
    clients = await call.idp.clients.list(after=decode_cursor(query.cursor), limit=query.limit + 1)
    page = clients[: query.limit]
    return ClientPage(
        items=[client_out(c) for c in page],
        next_cursor=encode_cursor(page[-1].client_id) if len(clients) > query.limit else None,
    )


@operation("POST", "/clients", summary="Register a client", status=201, body=ClientCreate, response=ClientCreated)
async def create_client(call: Call) -> ClientCreated:
    body: ClientCreate = call.body
    client, secret = await call.idp.clients.create(
        body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        public=body.public,
        require_mfa=body.require_mfa,
        require_consent=body.require_consent,
        grant_types=body.grant_types,
        id_token_alg=body.id_token_signed_response_alg,
        scopes=[body.scope],
        backchannel_logout_uri=body.backchannel_logout_uri or "",
        allow_signup=body.allow_signup,
        client_name=body.client_name or "",
        logo_uri=body.logo_uri or "",
        client_uri=body.client_uri or "",
        actor=call.admin.actor,
        client_ip=call.client_ip,
    )
    return ClientCreated.model_validate({**client.public_view(), "client_secret": secret})


@operation("GET", "/clients/{client_id}", summary="Get a client", response=ClientOut, errors=(404,))
async def get_client(call: Call) -> ClientOut:
    return client_out(await call.idp.clients.load(call.path["client_id"]))


@operation(
    "PATCH", "/clients/{client_id}", summary="Change a client", body=ClientPatch, response=ClientOut, errors=(404,)
)
async def update_client(call: Call) -> ClientOut:
    body: ClientPatch = call.body
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "id_token_signed_response_alg" in changes:
        changes["id_token_alg"] = changes.pop("id_token_signed_response_alg")
    if "scope" in changes:
        changes["scopes"] = [changes.pop("scope")]
    client = await call.idp.clients.update(
        call.path["client_id"], changes, actor=call.admin.actor, client_ip=call.client_ip
    )
    return client_out(client)


@operation("DELETE", "/clients/{client_id}", summary="Delete a client and revoke its tokens", status=204, errors=(404,))
async def delete_client(call: Call) -> None:
    await call.idp.clients.delete(call.path["client_id"], actor=call.admin.actor, client_ip=call.client_ip)


@operation(
    "POST",
    "/clients/{client_id}/secret",
    summary="Rotate a confidential client's secret (422 for a public client)",
    response=SecretOut,
    errors=(404, 422),
)
async def rotate_secret(call: Call) -> SecretOut:
    client_id = call.path["client_id"]
    secret = await call.idp.clients.rotate_secret(client_id, actor=call.admin.actor, client_ip=call.client_ip)
    return SecretOut(client_id=client_id, client_secret=secret)
