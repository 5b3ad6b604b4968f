defmodule ConnReg.InteropTest do
  # Real separate OS processes: a second `elixir` (test/support/peer.exs)
  # and the connreg CLI of the build directory.
  use ExUnit.Case, async: true
  import ConnRegTest.Helpers

  alias ConnReg.ConnectionRegistry, as: CR
  alias ConnReg.Transport

  setup do
    server = :"cr_interop_#{System.unique_integer([:positive])}"
    seg = segment("interop")
    start_supervised!({CR, name: server, segment: seg, capacity: 256, open: :create})
    %{server: server, segment: seg}
  end

  test "two BEAM OS processes share one registry; each sees the other's pids as foreign",
       %{server: s, segment: seg} do
    peer = peer_start(seg)
    peer_tag = String.to_integer(peer_call(peer, "tag"))
    assert peer_tag != Transport.boot_tag()

    # The peer registers its own processes; we see the ids, not as our pids.
    assert "{:error, :not_found}" = peer_call(peer, "get from-a")
    assert ":ok" = peer_call(peer, "register_self from-b")
    assert ":ok" = peer_call(peer, "register_new from-b2")
    assert {:error, :foreign_transport} = CR.get_transport_pid("from-b", s)
    assert {:ok, raw} = CR.get_raw_transport("from-b", s)
    assert Bitwise.bsr(raw, 32) == peer_tag

    # And the reverse: our pid is foreign to the peer, which reads it all the same.
    :ok = CR.register("from-a", self(), s)
    assert "{:error, :foreign_transport}" = peer_call(peer, "get from-a")
    assert "{:ok, #{Transport.encode(self())}}" == peer_call(peer, "raw from-a")
    assert "{:ok, :local_pid}" = peer_call(peer, "get from-b")

    # A transport of the peer dies: the peer's owner removes its id, which we see.
    assert "ok" = peer_call(peer, "kill from-b2")
    assert eventually(fn -> CR.get_transport_pid("from-b2", s) == {:error, :not_found} end)

    # The peer's owner stops: the peer's entries go, ours stay.
    assert ":ok" = peer_call(peer, "stop")
    assert {:error, :not_found} = CR.get_transport_pid("from-b", s)
    assert {:ok, me} = CR.get_transport_pid("from-a", s)
    assert me == self()
    Port.close(peer)
  end

  test "a value written by a previous boot is foreign, though a raw pid term is not",
       %{server: s, segment: seg} do
    boot1 = peer_start(seg)
    assert ":ok" = peer_call(boot1, "register_self boot-id")
    term = peer_call(boot1, "self_term")
    {:ok, raw1} = CR.get_raw_transport("boot-id", s)
    # The first boot exits without cleaning up (no owner terminate).
    Port.command(boot1, "halt\n")
    assert 0 = peer_exit(boot1)
    assert {:ok, ^raw1} = CR.get_raw_transport("boot-id", s)

    boot2 = peer_start(seg)
    # The hazard: boot 1's pid term decodes in boot 2 as one of its own processes.
    assert "{:local, true, " <> _ = peer_call(boot2, "decode_term " <> term)
    # connreg transports carry the boot: boot 2 refuses boot 1's value.
    assert "{:error, :foreign_transport}" = peer_call(boot2, "get boot-id")
    assert "{:ok, #{raw1}}" == peer_call(boot2, "raw boot-id")
    assert ":ok" = peer_call(boot2, "stop")
    Port.close(boot2)
  end

  test "the connreg CLI and Elixir read each other's ids", %{server: s, segment: seg} do
    h = CR.handle(s)

    # CLI -> Elixir (raw API, and ConnectionRegistry with a binary id)
    assert {_, 0} = cli(["register", seg, "conn-c", "4242"])
    assert {:ok, 4242} = ConnReg.get(h, "conn-c")
    assert {:ok, 4242} = CR.get_raw_transport("conn-c", s)
    assert {:error, :foreign_transport} = CR.get_transport_pid("conn-c", s)
    assert {_, 0} = cli(["register", seg, "0x00ff01", "18446744073709551615"])
    assert {:ok, 0xFFFF_FFFF_FFFF_FFFF} = ConnReg.get(h, <<0, 255, 1>>)

    # Elixir -> CLI
    :ok = ConnReg.register(h, "conn-e", 777)
    assert {"777\n", 0} = cli(["get", seg, "conn-e"])
    :ok = CR.register("conn-pid", self(), s)
    assert {out, 0} = cli(["get", seg, "conn-pid"])
    assert String.trim(out) == Integer.to_string(Transport.encode(self()))
    :ok = CR.unregister("conn-pid", s)
    assert {_, 1} = cli(["get", seg, "conn-pid"])

    # The CLI's check agrees the segment is sound after both wrote to it.
    assert {_, 0} = cli(["check", seg])
    assert :ok = ConnReg.check(h)
  end

  test "a transport registered from Elixir is removed when it dies, as the CLI sees",
       %{server: s, segment: seg} do
    t = spawn(fn -> receive do: (:stop -> :ok) end)
    :ok = CR.register("conn-t", t, s)
    assert {_, 0} = cli(["get", seg, "conn-t"])
    Process.exit(t, :kill)
    assert eventually(fn -> match?({_, 1}, cli(["get", seg, "conn-t"])) end)
  end
end
