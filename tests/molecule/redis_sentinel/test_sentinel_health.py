"""tgstack.hybrid.redis_sentinel_health on the converged group, and what each Sentinel knows."""

from __future__ import annotations

from redislab import HOSTS, MASTER_NAME, address, current_master, health, sentinel_client


def test_the_group_is_healthy(tmp_path):
    result = health(tmp_path)
    assert result["healthy"] is True, result.get("msg")
    assert result["changed"] is False
    assert result["problems"] == []
    assert result["master"]["address"] == f"{address(current_master())}:6379"
    assert len(result["sentinels"]) == 3
    for sentinel in result["sentinels"]:
        assert sentinel["ckquorum"] is True and sentinel["tilt"] is False
        assert sentinel["known_sentinels"] == 3 and sentinel["known_replicas"] == 2
    assert sorted(r["link_status"] for r in result["replicas"]) == ["up", "up"]


def test_every_sentinel_has_the_configured_settings():
    for name in HOSTS:
        state = sentinel_client(name).execute_command("SENTINEL", "MASTER", MASTER_NAME)
        if not isinstance(state, dict):  # RESP2 gives a flat list, RESP3 a map
            state = dict(zip(state[::2], state[1::2], strict=True))
        state = {str(key): str(value) for key, value in state.items()}
        assert state["quorum"] == "2"
        assert state["down-after-milliseconds"] == "3000"
        assert state["failover-timeout"] == "20000"
