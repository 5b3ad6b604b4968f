defmodule ConnReg.DirtyIoTest do
  # Not async: these tests occupy every dirty I/O scheduler, or measure
  # which schedulers are busy, and must run alone.
  use ExUnit.Case, async: false
  import ConnRegTest.Helpers

  test "a killed waiter frees its dirty I/O scheduler within a slice" do
    name = segment("dirty")
    # Closed at the end only: if waits were not sliced, a close in on_exit
    # would wait for the killed waiters for ever.
    {:ok, h} = ConnReg.create(name, capacity: 16)
    n = :erlang.system_info(:dirty_io_schedulers)
    # One waiter per dirty I/O scheduler: all of them are busy now.
    waiters = for _ <- 1..n, do: spawn(fn -> ConnReg.wait(h, "never", 0, :infinity) end)
    Process.sleep(150)
    Enum.each(waiters, &Process.exit(&1, :kill))
    # open runs on a dirty I/O scheduler too: it gets one once a slice ends.
    t0 = System.monotonic_time(:millisecond)
    task = Task.async(fn -> ConnReg.open(name) end)
    assert {:ok, h2} = Task.await(task, 2_000)
    assert System.monotonic_time(:millisecond) - t0 < 1_000
    ConnReg.close(h2)
    ConnReg.close(h)
  end

  test "wait runs on a dirty I/O scheduler; id calls on the caller's normal scheduler" do
    {_name, h} = registry("sched")
    :ok = ConnReg.register(h, "k", 1)

    wait = busy(fn -> {:error, :timeout} = ConnReg.wait(h, "never", 0, 300) end)
    # Blocked in the NIF for 300 ms: one dirty I/O scheduler active throughout.
    assert wait.dirty_io > 0.6, inspect(wait)
    assert wait.normal < 0.3, inspect(wait)

    calls =
      busy(fn ->
        for _ <- 1..20_000 do
          {:ok, 1} = ConnReg.get(h, "k")
          :ok = ConnReg.update(h, "k", 1)
          :ok = ConnReg.register(h, "k", 1)
          {:error, {:mismatch, 1}} = ConnReg.cas(h, "k", 2, 3)
          {:error, :not_found} = ConnReg.get(h, "x")
          :ok = ConnReg.unregister(h, "x")
        end
      end)

    assert calls.normal > 0.5, inspect(calls)
    assert calls.dirty_io + calls.dirty_cpu < 0.05, inspect(calls)
  end

  # Runs fun; returns the time each kind of scheduler was active meanwhile,
  # summed over the schedulers of that kind, as a fraction of the wall time
  # (1.0: one scheduler busy throughout).
  defp busy(fun) do
    old = :erlang.system_flag(:scheduler_wall_time, true)

    try do
      before = :erlang.statistics(:scheduler_wall_time_all)
      fun.()
      after_ = :erlang.statistics(:scheduler_wall_time_all)
      normal = :erlang.system_info(:schedulers)
      dirty_cpu = :erlang.system_info(:dirty_cpu_schedulers)

      kind = fn
        id when id <= normal -> :normal
        id when id <= normal + dirty_cpu -> :dirty_cpu
        _ -> :dirty_io
      end

      deltas =
        for {id, a1, t1} <- before, {^id, a2, t2} <- after_, do: {kind.(id), a2 - a1, t2 - t1}

      wall = deltas |> Enum.map(&elem(&1, 2)) |> Enum.max()

      for k <- [:normal, :dirty_cpu, :dirty_io], into: %{} do
        {k, for({^k, active, _} <- deltas, do: active) |> Enum.sum() |> Kernel./(wall)}
      end
    after
      :erlang.system_flag(:scheduler_wall_time, old)
    end
  end
end
