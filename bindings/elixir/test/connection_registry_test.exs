defmodule ConnReg.ConnectionRegistryTest do
  use ExUnit.Case, async: true
  import ConnRegTest.Helpers

  alias ConnReg.ConnectionRegistry, as: CR
  alias ConnReg.Transport

  # Each test runs its own owner (server name) on its own segment.
  setup context do
    server = :"cr_#{System.unique_integer([:positive])}"
    segment = segment("cr")
    opts = [name: server, segment: segment, capacity: 256, key_max: 128]
    opts = Keyword.merge(opts, Map.get(context, :cr_opts, []))
    pid = start_supervised!({CR, opts})
    %{server: server, segment: segment, owner: pid, opts: opts}
  end

  defp transport do
    spawn(fn -> receive do: (:stop -> :ok) end)
  end

  describe "the seed API" do
    test "register, get_transport_pid, update_transport_pid, unregister", %{server: s} do
      id = make_ref()
      t1 = transport()
      t2 = transport()
      assert {:error, :not_found} = CR.get_transport_pid(id, s)
      assert :ok = CR.register(id, t1, s)
      assert {:ok, ^t1} = CR.get_transport_pid(id, s)
      assert :ok = CR.update_transport_pid(id, t2, s)
      assert {:ok, ^t2} = CR.get_transport_pid(id, s)
      assert :ok = CR.unregister(id, s)
      assert {:error, :not_found} = CR.get_transport_pid(id, s)
      assert {:error, :not_found} = CR.update_transport_pid(id, t1, s)
      assert {:error, :not_found} = CR.get_transport_pid(id, s)
      # unregister of an unknown id is :ok too
      assert :ok = CR.unregister(make_ref(), s)
    end

    test "register replaces an existing registration and returns :ok", %{server: s} do
      id = make_ref()
      t1 = transport()
      t2 = transport()
      assert :ok = CR.register(id, t1, s)
      assert :ok = CR.register(id, t2, s)
      assert {:ok, ^t2} = CR.get_transport_pid(id, s)
    end

    test "the default server name and arity-1/2 functions", %{segment: seg} do
      start_supervised!(%{CR.child_spec(segment: seg <> "-d", capacity: 64) | id: :default_cr})
      on_exit(fn -> ConnReg.unlink(seg <> "-d") end)
      id = make_ref()
      assert :ok = CR.register(id, self())
      assert {:ok, me} = CR.get_transport_pid(id)
      assert me == self()
      assert :ok = CR.update_transport_pid(id, self())
      assert :ok = CR.unregister(id)
      assert {:error, :not_found} = CR.get_transport_pid(id)
    end

    test "ids are any term; binaries are stored as their bytes", %{server: s} do
      t = transport()

      ids = [
        make_ref(),
        {:conn, 1, "x"},
        :an_atom,
        12_345,
        "plain",
        "",
        <<131, 1, 2>>,
        %{a: 1, b: [2, 3]},
        [1, 2, 3]
      ]

      for id <- ids, do: assert(:ok = CR.register(id, t, s))
      for id <- ids, do: assert({:ok, ^t} = CR.get_transport_pid(id, s))
      assert {:ok, entries} = ConnReg.to_list(CR.handle(s))
      assert length(entries) == length(ids)
      assert CR.key("plain") == "plain"
      assert CR.key(<<131, 1, 2>>) != <<131, 1, 2>>
      assert {:ok, _} = ConnReg.get(CR.handle(s), "plain")
      # Distinct terms never share an entry.
      assert ids |> Enum.map(&CR.key/1) |> Enum.uniq() |> length() == length(ids)
    end

    test "an id whose encoding exceeds key_max", %{server: s} do
      big = String.duplicate("x", 200)
      assert {:error, :enametoolong} = CR.register(big, self(), s)
      assert {:error, :not_found} = CR.get_transport_pid(big, s)
      assert {:error, :not_found} = CR.update_transport_pid(big, self(), s)
      assert :ok = CR.unregister(big, s)
    end

    test "only local pids are accepted as transports", %{server: s} do
      assert_raise FunctionClauseError, fn -> CR.register(make_ref(), :not_a_pid, s) end
      assert_raise ArgumentError, fn -> CR.register(make_ref(), fake_remote_pid(), s) end
      # Same node name, another creation: would decode as <0.N.S>, a process of this VM.
      stale = stale_incarnation_pid(self())
      assert node(stale) == node() and stale != self()
      assert_raise ArgumentError, fn -> CR.register(make_ref(), stale, s) end
      id = make_ref()
      :ok = CR.register(id, self(), s)
      assert_raise ArgumentError, fn -> CR.update_transport_pid(id, stale, s) end
      assert {:ok, me} = CR.get_transport_pid(id, s)
      assert me == self()
    end

    test "calls do not go through the owner: they run while it is suspended",
         %{server: s, owner: owner} do
      id = make_ref()
      t = transport()
      :ok = :sys.suspend(owner)

      try do
        # Were any of these a call to the owner, the task would hang.
        task =
          Task.async(fn ->
            {CR.get_transport_pid(id, s), CR.register(id, t, s), CR.get_transport_pid(id, s),
             CR.update_transport_pid(id, self(), s), CR.unregister(id, s),
             CR.get_transport_pid(id, s), CR.update_transport_pid(id, t, s)}
          end)

        assert {{:error, :not_found}, :ok, {:ok, ^t}, :ok, :ok, {:error, :not_found},
                {:error, :not_found}} = Task.await(task, 2_000)
      after
        :sys.resume(owner)
      end
    end

    test "calls before start_link raise ArgumentError, as Registry does" do
      assert_raise ArgumentError, ~r/unknown registry/, fn ->
        CR.get_transport_pid(make_ref(), :no_such_cr)
      end

      assert_raise ArgumentError, fn -> CR.register(make_ref(), self(), :no_such_cr) end
    end
  end

  describe "liveness" do
    test "a dead transport's entries vanish", %{server: s} do
      t = transport()
      ids = for _ <- 1..3, do: make_ref()
      for id <- ids, do: :ok = CR.register(id, t, s)
      for id <- ids, do: assert({:ok, ^t} = CR.get_transport_pid(id, s))
      Process.exit(t, :kill)
      assert eventually(fn -> Enum.all?(ids, &(CR.get_transport_pid(&1, s) == {:error, :not_found})) end)
      assert {:ok, %{live: 0}} = ConnReg.stats(CR.handle(s))
      CR.sync(s)
      assert CR.watched(s) == %{}
    end

    test "an id re-pointed to another transport survives the old one's death", %{server: s} do
      old = transport()
      new = transport()
      id1 = make_ref()
      id2 = make_ref()
      :ok = CR.register(id1, old, s)
      :ok = CR.register(id2, old, s)
      :ok = CR.update_transport_pid(id1, new, s)
      CR.sync(s)
      assert %{^old => [_], ^new => [_]} = CR.watched(s)
      Process.exit(old, :kill)
      assert eventually(fn -> CR.get_transport_pid(id2, s) == {:error, :not_found} end)
      assert {:ok, ^new} = CR.get_transport_pid(id1, s)
      Process.exit(new, :kill)
      assert eventually(fn -> CR.get_transport_pid(id1, s) == {:error, :not_found} end)
    end

    test "an id re-registered by another writer (not through the owner) is not removed",
         %{server: s} do
      t = transport()
      id = "shared-id"
      :ok = CR.register(id, t, s)
      CR.sync(s)
      # A C gateway (here the raw API) takes the id over.
      :ok = ConnReg.register(CR.handle(s), CR.key(id), 4242)
      Process.exit(t, :kill)
      # The owner processes the :DOWN; its cas finds 4242 and leaves it.
      CR.sync(s)
      assert eventually(fn -> CR.watched(s) == %{} end)
      assert {:error, :foreign_transport} = CR.get_transport_pid(id, s)
      assert {:ok, 4242} = CR.get_raw_transport(id, s)
    end

    test "unregister drops the owner's monitor", %{server: s} do
      t = transport()
      id = make_ref()
      :ok = CR.register(id, t, s)
      CR.sync(s)
      assert Map.has_key?(CR.watched(s), t)
      :ok = CR.unregister(id, s)
      CR.sync(s)
      assert CR.watched(s) == %{}
    end

    test "a transport that is dead before the owner monitors it", %{server: s} do
      t = transport()
      Process.exit(t, :kill)
      id = make_ref()
      :ok = CR.register(id, t, s)
      assert eventually(fn -> CR.get_transport_pid(id, s) == {:error, :not_found} end)
    end

    test "the owner stopping removes this node's entries, not others'", %{server: s, opts: opts} do
      t = transport()
      :ok = CR.register("mine", t, s)
      h = CR.handle(s)
      :ok = ConnReg.register(h, "c-gateway", 99)
      stop_supervised!(s)
      assert_raise ArgumentError, fn -> CR.get_transport_pid("mine", s) end
      start_supervised!({CR, opts})
      assert {:error, :not_found} = CR.get_transport_pid("mine", s)
      assert {:ok, 99} = CR.get_raw_transport("c-gateway", s)
    end

    test "a restarted owner adopts the entries of live transports and drops dead ones",
         %{server: s, owner: owner} do
      live = transport()
      dead = transport()
      :ok = CR.register("live", live, s)
      :ok = CR.register("dead", dead, s)
      CR.sync(s)
      # Kill the owner outright (no terminate): the supervisor restarts it.
      Process.exit(owner, :kill)
      Process.exit(dead, :kill)

      assert eventually(fn ->
               case GenServer.whereis(s) do
                 pid when is_pid(pid) and pid != owner -> true
                 _ -> false
               end
             end)

      assert eventually(fn -> CR.get_transport_pid("dead", s) == {:error, :not_found} end)
      assert {:ok, ^live} = CR.get_transport_pid("live", s)
      assert %{^live => ["live"]} = CR.watched(s)
      Process.exit(live, :kill)
      assert eventually(fn -> CR.get_transport_pid("live", s) == {:error, :not_found} end)
    end
  end

  describe "foreign transports" do
    test "values of C programs, other nodes and the tombstone", %{server: s} do
      h = CR.handle(s)
      tag = Transport.boot_tag()
      other_tag = if tag == 0x8000_0001, do: 0x8000_0002, else: 0x8000_0001
      me = Transport.encode(self())

      for {id, value} <- [
            {"c-small", 42},
            {"c-max", 0xFFFF_FFFF_FFFF_FFFF},
            {"c-os-pid", System.pid() |> String.to_integer()},
            # this pid's number under another boot's tag
            {"other-boot", Bitwise.bor(Bitwise.bsl(other_tag, 32), Bitwise.band(me, 0xFFFF_FFFF))}
          ] do
        :ok = ConnReg.register(h, id, value)
        assert {:error, :foreign_transport} = CR.get_transport_pid(id, s)
        assert {:ok, ^value} = CR.get_raw_transport(id, s)
      end

      :ok = ConnReg.register(h, "tomb", Transport.tombstone())
      assert {:error, :not_found} = CR.get_transport_pid("tomb", s)
      :ok = ConnReg.register(h, "mine", me)
      assert {:ok, pid} = CR.get_transport_pid("mine", s)
      assert pid == self()
    end

    test "encoding: round trip, tag in the high bits, top bit set" do
      pids = [self() | for(_ <- 1..100, do: spawn(fn -> :ok end))]

      for pid <- pids do
        v = Transport.encode(pid)
        assert Bitwise.bsr(v, 32) == Transport.boot_tag()
        assert Bitwise.band(v, 1 <<< 63) != 0
        assert {:ok, ^pid} = Transport.decode(v)
        assert Transport.local?(v)
      end

      refute Transport.local?(42)
      assert {:error, :foreign_transport} = Transport.decode(0)
    end
  end

  describe "supervision" do
    test "child_spec starts a supervised owner", %{segment: seg} do
      name = :"cr_sup_#{System.unique_integer([:positive])}"
      spec = CR.child_spec(name: name, segment: seg <> "-sup", unlink_on_stop: true, capacity: 64)
      assert %{id: ^name, start: {CR, :start_link, [_]}} = spec
      {:ok, sup} = Supervisor.start_link([spec], strategy: :one_for_one)
      id = make_ref()
      :ok = CR.register(id, self(), name)
      assert {:ok, _} = CR.get_transport_pid(id, name)
      Supervisor.stop(sup)
      # unlink_on_stop removed the segment's name.
      assert {:error, :enoent} = ConnReg.open(seg <> "-sup")
    end
  end

  defp a <<< b, do: Bitwise.bsl(a, b)

  # The pid's number and serial under this node's name with another creation
  # (an earlier incarnation of this node).
  defp stale_incarnation_pid(pid) do
    ext = :erlang.term_to_binary(pid)
    skip = byte_size(ext) - 4
    <<head::binary-size(skip), creation::32>> = ext
    :erlang.binary_to_term(<<head::binary, rem(creation + 1, 1 <<< 32)::32>>)
  end

  # A pid of another (distributed) node: NEW_PID_EXT with a foreign node name.
  defp fake_remote_pid do
    node = "other@host"
    :erlang.binary_to_term(<<131, 88, 119, byte_size(node), node::binary, 1::32, 0::32, 1::32>>)
  end
end
