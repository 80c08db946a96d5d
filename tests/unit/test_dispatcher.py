import asyncio

import pytest

from evd.dispatcher import Dispatcher, Peer
from evd.errors import CommandError
from evd.pluginmanager import command_table

OTHER_USER = Peer(pid=1, uid=12345, gid=12345)


class FakeDaemon:
    role_name = "engine"


def dispatcher(**handlers):
    return Dispatcher(handlers, command_table(), allowed_gid=None, daemon=FakeDaemon())


def dispatch(d, request, peer=None):
    return asyncio.run(d.dispatch(request, peer))


def test_ok_reply_carries_the_id_and_result():
    d = dispatcher(ping=lambda args, ctx: "pong")
    assert dispatch(d, {"id": 7, "cmd": "ping"}) == {"id": 7, "ok": True, "result": "pong"}


def test_async_handlers_are_awaited():
    async def plug(args, ctx):
        await asyncio.sleep(0)
        return {"plugged": True}

    assert dispatch(dispatcher(**{"engine.plug": plug}), {"id": 1, "cmd": "engine.plug"})["result"] == {"plugged": True}


def test_command_of_another_role_is_named_clearly():
    reply = dispatch(dispatcher(), {"id": 2, "cmd": "cp.stop", "args": {"all": True}})
    assert reply == {
        "id": 2,
        "ok": False,
        "error": {"code": "unknown_command", "message": "'cp stop' is a central command; this daemon is a engine"},
    }


def test_unknown_command():
    assert dispatch(dispatcher(), {"id": 3, "cmd": "fly"})["error"] == {"code": "unknown_command", "message": "unknown command 'fly'"}


@pytest.mark.parametrize("request_", [[1, 2], {"cmd": 5}, {"id": 1}, {"id": 1, "cmd": "ping", "args": [1]}])
def test_malformed_requests(request_):
    assert dispatch(dispatcher(ping=lambda a, c: "pong"), request_)["error"]["code"] == "bad_request"


def test_handler_errors_become_replies():
    def refuse(args, ctx):
        raise CommandError("refused", "CP is supplying")

    def crash(args, ctx):
        raise ZeroDivisionError("oops")

    d = dispatcher(**{"engine.plug": refuse, "engine.unplug": crash})
    assert dispatch(d, {"id": 1, "cmd": "engine.plug"})["error"] == {"code": "refused", "message": "CP is supplying"}
    assert dispatch(d, {"id": 2, "cmd": "engine.unplug"})["error"]["code"] == "internal"


def test_state_changing_commands_need_permission():
    d = dispatcher(**{"engine.plug": lambda a, c: "ok", "status": lambda a, c: {}})
    assert dispatch(d, {"id": 1, "cmd": "engine.plug"}, OTHER_USER)["error"]["code"] == "not_permitted"
    assert dispatch(d, {"id": 2, "cmd": "status"}, OTHER_USER)["ok"] is True
    assert dispatch(d, {"id": 3, "cmd": "engine.plug"}, Peer(pid=1, uid=0, gid=0))["ok"] is True
    d.allowed_gid = 12345
    assert dispatch(d, {"id": 4, "cmd": "engine.plug"}, OTHER_USER)["ok"] is True


def test_undescribed_plugin_commands_count_as_state_changing():
    d = dispatcher(**{"x.y": lambda a, c: "done"})
    assert dispatch(d, {"id": 1, "cmd": "x.y"}, OTHER_USER)["error"]["code"] == "not_permitted"
