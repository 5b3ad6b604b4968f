defmodule ConnRegTest do
  use ExUnit.Case, async: true
  import ConnRegTest.Helpers

  @max 0xFFFF_FFFF_FFFF_FFFF

  describe "attach" do
    test "create, open, open_or_create and their errors" do
      name = segment("attach")
      assert {:ok, h1} = ConnReg.create(name, capacity: 16, key_max: 32)
      assert {:error, :eexist} = ConnReg.create(name, capacity: 16)
      assert {:ok, h2} = ConnReg.open(name)
      assert {:ok, h3, false} = ConnReg.open_or_create(name, capacity: 99)
      assert :ok = ConnReg.register(h1, "a", 1)
      assert {:ok, 1} = ConnReg.get(h2, "a")
      assert {:ok, 1} = ConnReg.get(h3, "a")
      # The existing registry is opened as it is.
      assert {:ok, %{capacity: 16, key_max: 32}} = ConnReg.stats(h3)
      Enum.each([h1, h2, h3], &ConnReg.close/1)

      assert :ok = ConnReg.unlink(name)
      assert {:error, :enoent} = ConnReg.open(name)
      assert {:error, :enoent} = ConnReg.unlink(name)
      assert {:ok, h4, true} = ConnReg.open_or_create(name, capacity: 8)
      assert {:error, :not_found} = ConnReg.get(h4, "a")
      ConnReg.close(h4)
    end

    test "bad names and configurations" do
      assert {:error, :einval} = ConnReg.create("no-slash", capacity: 4)
      assert {:error, :einval} = ConnReg.create("/bad name", capacity: 4)
      assert {:error, :einval} = ConnReg.create(segment("cap0"), capacity: 0)
      assert_raise ArgumentError, fn -> ConnReg.create(segment("neg"), capacity: -1) end
      assert_raise FunctionClauseError, fn -> ConnReg.open(:not_a_binary) end
    end

    test "max_threads defaults to cover every scheduler thread of this VM" do
      threads = ConnReg.scheduler_threads()

      assert threads ==
               :erlang.system_info(:schedulers) + :erlang.system_info(:dirty_cpu_schedulers) +
                 :erlang.system_info(:dirty_io_schedulers)

      assert ConnReg.default_max_threads() >= threads
      {_name, h} = registry("threads")
      assert {:ok, %{max_threads: n}} = ConnReg.stats(h)
      assert n == ConnReg.default_max_threads()
    end

    test "max_threads covers each kind of scheduler: a VM with many of each" do
      # 64 normal + 64 dirty CPU + 100 dirty I/O = 228 threads: 4 x 228 = 912,
      # more than 512 and more than 4x any two kinds alone.
      name = segment("many-sched")

      out =
        elixir_eval(
          """
          {:ok, h} = ConnReg.create(#{inspect(name)}, capacity: 8)
          {:ok, st} = ConnReg.stats(h)
          IO.inspect({ConnReg.scheduler_threads(), ConnReg.default_max_threads(), st.max_threads})
          """,
          "+S 64:64 +SDcpu 64:64 +SDio 100"
        )

      assert {{228, 912, 912}, _} = Code.eval_string(out)
    end

    test "exactly one slot per scheduler thread suffices: every scheduler kind calls in" do
      {_name, h} = registry("slots", max_threads: ConnReg.scheduler_threads())
      :ok = ConnReg.register(h, "k", 7)

      normal =
        for _ <- 1..(4 * :erlang.system_info(:schedulers)) do
          Task.async(fn -> for _ <- 1..2_000, do: {:ok, 7} = ConnReg.get(h, "k") end)
        end

      dirty_cpu = for _ <- 1..8, do: Task.async(fn -> {:ok, [_]} = ConnReg.to_list(h) end)
      dirty_io = for _ <- 1..12, do: Task.async(fn -> {:ok, 7} = ConnReg.wait(h, "k", 0, 50) end)
      Task.await_many(normal ++ dirty_cpu ++ dirty_io, 20_000)

      assert {:ok, %{readers: readers}} = ConnReg.stats(h)
      assert readers <= ConnReg.scheduler_threads()
    end
  end

  describe "id operations" do
    setup do
      {name, h} = registry("ops")
      %{name: name, h: h}
    end

    test "register, get, update, unregister", %{h: h} do
      assert {:error, :not_found} = ConnReg.get(h, "conn-1")
      assert {:error, :not_found} = ConnReg.update(h, "conn-1", 5)
      assert :ok = ConnReg.register(h, "conn-1", 0x1001)
      assert {:ok, 0x1001} = ConnReg.get(h, "conn-1")
      assert :ok = ConnReg.register(h, "conn-1", 0x1002)
      assert {:ok, 0x1002} = ConnReg.get(h, "conn-1")
      assert :ok = ConnReg.update(h, "conn-1", 0x2002)
      assert {:ok, 0x2002} = ConnReg.get(h, "conn-1")
      assert :ok = ConnReg.unregister(h, "conn-1")
      assert {:error, :not_found} = ConnReg.get(h, "conn-1")
      assert :ok = ConnReg.unregister(h, "conn-1")
    end

    test "every 64-bit transport is valid; other integers are refused", %{h: h} do
      for {id, t} <- [{"zero", 0}, {"max", @max}, {"mid", 1 <<< 63}] do
        assert :ok = ConnReg.register(h, id, t)
        assert {:ok, ^t} = ConnReg.get(h, id)
      end

      assert_raise ArgumentError, fn -> ConnReg.register(h, "x", @max + 1) end
      assert_raise ArgumentError, fn -> ConnReg.register(h, "x", -1) end
      assert_raise ArgumentError, fn -> ConnReg.get(h, :not_binary) end
    end

    test "ids: any bytes, 1..key_max", %{h: h} do
      bin = <<0, 255, 0, 1>>
      assert :ok = ConnReg.register(h, bin, 9)
      assert {:ok, 9} = ConnReg.get(h, bin)
      assert {:error, :not_found} = ConnReg.get(h, <<0, 255, 0>>)
      long = String.duplicate("x", 64)
      assert :ok = ConnReg.register(h, long, 1)
      assert {:error, :enametoolong} = ConnReg.register(h, long <> "y", 1)
      assert {:error, :enametoolong} = ConnReg.get(h, long <> "y")
      assert {:error, :einval} = ConnReg.register(h, "", 1)
      assert {:error, :einval} = ConnReg.get(h, "")
    end

    test "cas", %{h: h} do
      assert {:error, :not_found} = ConnReg.cas(h, "c", 1, 2)
      :ok = ConnReg.register(h, "c", 1)
      assert :ok = ConnReg.cas(h, "c", 1, 2)
      assert {:ok, 2} = ConnReg.get(h, "c")
      assert {:error, {:mismatch, 2}} = ConnReg.cas(h, "c", 1, 3)
      assert {:ok, 2} = ConnReg.get(h, "c")
      assert :ok = ConnReg.cas(h, "c", 2, @max)
      assert {:ok, @max} = ConnReg.get(h, "c")
    end

    test "capacity: enospc when full, a freed place is reusable" do
      {_name, h} = registry("full", capacity: 4)
      for i <- 1..4, do: assert(:ok = ConnReg.register(h, "id-#{i}", i))
      assert {:error, :enospc} = ConnReg.register(h, "id-5", 5)
      # Updates of live ids still work when full.
      assert :ok = ConnReg.register(h, "id-4", 44)
      :ok = ConnReg.unregister(h, "id-1")
      assert :ok = ConnReg.register(h, "id-5", 5)
      assert ConnReg.strerror(:enospc) =~ "ENOSPC"
    end

    test "get_bulk keeps order; a long list moves to a dirty scheduler", %{h: h} do
      :ok = ConnReg.register(h, "b1", 1)
      :ok = ConnReg.register(h, "b3", 3)
      too_long = String.duplicate("z", 65)

      assert [{:ok, 1}, {:error, :not_found}, {:ok, 3}, {:error, :enametoolong}] =
               ConnReg.get_bulk(h, ["b1", "b2", "b3", too_long])

      assert [] = ConnReg.get_bulk(h, [])
      ids = for i <- 1..5_000, do: if(rem(i, 2) == 0, do: "b1", else: "b3")
      results = ConnReg.get_bulk(h, ids)
      assert length(results) == 5_000
      assert Enum.all?(Enum.zip(ids, results), fn {id, r} -> r == ConnReg.get(h, id) end)
      assert_raise ArgumentError, fn -> ConnReg.get_bulk(h, ["ok", :bad]) end
    end

    test "to_list, foreach, stream", %{h: h} do
      entries = for i <- 1..50, into: %{}, do: {"w-#{i}", i * 10}
      Enum.each(entries, fn {id, t} -> :ok = ConnReg.register(h, id, t) end)
      assert {:ok, list} = ConnReg.to_list(h)
      assert Map.new(list) == entries
      assert length(list) == 50

      {:ok, agent} = Agent.start_link(fn -> [] end)
      assert :ok = ConnReg.foreach(h, fn id, t -> Agent.update(agent, &[{id, t} | &1]) end)
      assert Map.new(Agent.get(agent, & &1)) == entries

      stream = ConnReg.stream(h)
      :ok = ConnReg.register(h, "late", 1)
      # The walk runs when the stream is consumed.
      assert stream |> Enum.map(&elem(&1, 0)) |> Enum.member?("late")
    end

    test "stats and check", %{h: h} do
      :ok = ConnReg.register(h, "s1", 1)
      :ok = ConnReg.register(h, "s2", 2)

      assert {:ok, %{live: 2, capacity: 1024, key_max: 64, layout_version: lv, readers: r}} =
               ConnReg.stats(h)

      assert lv >= 1 and r >= 1
      assert :ok = ConnReg.check(h)
    end
  end

  describe "wait" do
    setup do
      {name, h} = registry("wait")
      %{name: name, h: h}
    end

    test "returns at once when the id already holds another transport", %{h: h} do
      :ok = ConnReg.register(h, "w", 5)
      assert {:ok, 5} = ConnReg.wait(h, "w", 4, 0)
      assert {:ok, 5} = ConnReg.wait(h, "w", 4)
    end

    test "times out, across several 100 ms slices", %{h: h} do
      :ok = ConnReg.register(h, "w", 5)
      t0 = System.monotonic_time(:millisecond)
      assert {:error, :timeout} = ConnReg.wait(h, "w", 5, 250)
      elapsed = System.monotonic_time(:millisecond) - t0
      assert elapsed >= 250 and elapsed < 3_000
      assert {:error, :timeout} = ConnReg.wait(h, "absent", 0, 0)
    end

    test "one NIF call blocks at most 100 ms, whatever timeout it is given", %{h: h} do
      for asked <- [5_000, -1] do
        t0 = System.monotonic_time(:millisecond)
        assert {:error, :etimedout} = ConnReg.Nif.wait_slice(h, "absent", 0, asked)
        elapsed = System.monotonic_time(:millisecond) - t0
        assert elapsed >= 90 and elapsed < 1_000, "asked #{asked} ms, blocked #{elapsed} ms"
      end
    end

    test "wakes on a change made by another OS process (the connreg CLI)", %{name: name, h: h} do
      waiter = Task.async(fn -> ConnReg.wait(h, "cli-w", 0, 10_000) end)
      Process.sleep(150)
      assert {_, 0} = cli(["register", name, "cli-w", "77"])
      assert {:ok, 77} = Task.await(waiter, 5_000)
    end
  end

  describe "close" do
    test "calls after close return {:error, :closed}; close twice is :ok" do
      {_name, h} = registry("close")
      :ok = ConnReg.register(h, "a", 1)
      assert :ok = ConnReg.close(h)
      assert :ok = ConnReg.close(h)
      assert {:error, :closed} = ConnReg.get(h, "a")
      assert {:error, :closed} = ConnReg.register(h, "a", 2)
      assert {:error, :closed} = ConnReg.update(h, "a", 2)
      assert {:error, :closed} = ConnReg.cas(h, "a", 1, 2)
      assert {:error, :closed} = ConnReg.unregister(h, "a")
      assert {:error, :closed} = ConnReg.wait(h, "a", 1, 10)
      assert {:error, :closed} = ConnReg.get_bulk(h, ["a"])
      assert {:error, :closed} = ConnReg.to_list(h)
      assert {:error, :closed} = ConnReg.stats(h)
      assert {:error, :closed} = ConnReg.check(h)
    end

    test "close waits for a waiter in flight, which then sees :closed" do
      {_name, h} = registry("close-wait")
      waiter = Task.async(fn -> ConnReg.wait(h, "w", 0, 5_000) end)
      Process.sleep(120)
      t0 = System.monotonic_time(:millisecond)
      assert :ok = ConnReg.close(h)
      assert System.monotonic_time(:millisecond) - t0 < 1_000
      assert {:error, :closed} = Task.await(waiter, 2_000)
    end

    test "a handle that is garbage collected gives back its reader slots" do
      # As many slots as scheduler threads: if handles dropped without close
      # kept their slots, these rounds (each a new handle, each taking at
      # least one slot) would run out of them.
      slots = ConnReg.scheduler_threads()
      {name, h} = registry("gc", max_threads: slots)
      :ok = ConnReg.register(h, "k", 1)

      for round <- 1..(2 * slots) do
        {pid, ref} =
          spawn_monitor(fn ->
            {:ok, h2} = ConnReg.open(name)
            exit(ConnReg.get(h2, "k"))
          end)

        assert_receive {:DOWN, ^ref, :process, ^pid, result}, 5_000
        # The destructor runs when the dead process's heap is freed; allow it a moment.
        assert result == {:ok, 1} or
                 (result == {:error, :eagain} and
                    eventually(fn -> match?({:ok, %{readers: r}} when r < slots, ConnReg.stats(h)) end)),
               "round #{round}: #{inspect(result)}"
      end

      assert eventually(fn -> match?({:ok, %{readers: r}} when r < slots, ConnReg.stats(h)) end)
    end
  end

  defp a <<< b, do: Bitwise.bsl(a, b)
end
