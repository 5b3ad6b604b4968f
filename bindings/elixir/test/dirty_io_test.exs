defmodule ConnReg.DirtyIoTest do
  # Not async: this test occupies every dirty I/O scheduler, and must run
  # alone to show that a killed waiter gives its scheduler back.
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
end
