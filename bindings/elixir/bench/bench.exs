# Per-call cost of the Elixir binding against ETS and Elixir's Registry.
#
#   cd bindings/elixir && MIX_ENV=test mix run bench/bench.exs [passes]
#
# 10,000 distinct 16-byte binary ids (cache-resident). Each row times one
# pass over all ids (a recursive loop over a list, one call per id) and
# prints the median over the passes, in ns per call, loop included (the
# first row is the loop alone). Rows marked "x2" run the same pass in two
# processes at once (one per scheduler) and give the wall time per call of
# one of them.
alias ConnReg.ConnectionRegistry, as: CR

defmodule Bench do
  @n 10_000

  def n, do: @n

  def median(list) do
    sorted = Enum.sort(list)
    Enum.at(sorted, div(length(sorted), 2))
  end

  # Times fun.() `passes` times; returns the median ns per call.
  def time(passes, calls, fun) do
    fun.()

    for _ <- 1..passes do
      t0 = System.monotonic_time(:nanosecond)
      fun.()
      (System.monotonic_time(:nanosecond) - t0) / calls
    end
    |> median()
  end

  # The same pass in two processes started together: median of the slower one.
  def time2(passes, calls, fun) do
    for _ <- 1..passes do
      parent = self()

      pids =
        for _ <- 1..2 do
          spawn_link(fn ->
            receive do: (:go -> :ok)
            t0 = System.monotonic_time(:nanosecond)
            fun.()
            send(parent, {self(), System.monotonic_time(:nanosecond) - t0})
          end)
        end

      Enum.each(pids, &send(&1, :go))
      Enum.map(pids, fn p -> receive do: ({^p, ns} -> ns) end) |> Enum.max() |> Kernel./(calls)
    end
    |> median()
  end

  # Runs fun in a new process (one that holds no Registry keys: Registry's
  # unregister scans the caller's own keys) and waits for it.
  def fresh(fun) do
    {pid, ref} = spawn_monitor(fun)
    receive do: ({:DOWN, ^ref, :process, ^pid, :normal} -> :ok)
  end

  # One loop per contender, so that no anonymous call sits inside it.
  def loop([]), do: :ok
  def loop([_ | t]), do: loop(t)

  def ets_lookup(_tab, []), do: :ok
  def ets_lookup(tab, [k | t]), do: (_ = :ets.lookup(tab, k); ets_lookup(tab, t))

  def pt_get(_k, 0), do: :ok
  def pt_get(k, n), do: (_ = :persistent_term.get(k); pt_get(k, n - 1))

  def key(_s, []), do: :ok
  def key(s, [k | t]), do: (_ = CR.key(k); key(s, t))

  def ets_insert(_tab, [], _v), do: :ok
  def ets_insert(tab, [k | t], v), do: (true = :ets.insert(tab, {k, v}); ets_insert(tab, t, v))

  def reg_lookup(_r, []), do: :ok
  def reg_lookup(r, [k | t]), do: ([{_, _}] = Registry.lookup(r, k); reg_lookup(r, t))

  def reg_register_unregister(_r, []), do: :ok

  def reg_register_unregister(r, [k | t]) do
    {:ok, _} = Registry.register(r, k, self())
    :ok = Registry.unregister(r, k)
    reg_register_unregister(r, t)
  end

  def reg_update_value(_r, [], _v), do: :ok

  def reg_update_value(r, [k | t], v) do
    {_, _} = Registry.update_value(r, k, fn _ -> v end)
    reg_update_value(r, t, v)
  end

  def cr_get(_h, []), do: :ok
  def cr_get(h, [k | t]), do: ({:ok, _} = ConnReg.get(h, k); cr_get(h, t))

  def cr_register(_h, [], _v), do: :ok
  def cr_register(h, [k | t], v), do: (:ok = ConnReg.register(h, k, v); cr_register(h, t, v))

  def cr_update(_h, [], _v), do: :ok
  def cr_update(h, [k | t], v), do: (:ok = ConnReg.update(h, k, v); cr_update(h, t, v))

  def cr_register_unregister(_h, [], _v), do: :ok

  def cr_register_unregister(h, [k | t], v) do
    :ok = ConnReg.register(h, k, v)
    :ok = ConnReg.unregister(h, k)
    cr_register_unregister(h, t, v)
  end

  def cr_bulk(_h, []), do: :ok
  def cr_bulk(h, [ids | t]), do: (_ = ConnReg.get_bulk(h, ids); cr_bulk(h, t))

  def conn_get(_s, []), do: :ok
  def conn_get(s, [k | t]), do: ({:ok, _} = CR.get_transport_pid(k, s); conn_get(s, t))

  def conn_register(s, [], _p), do: CR.sync(s)
  def conn_register(s, [k | t], p), do: (:ok = CR.register(k, p, s); conn_register(s, t, p))

  def conn_register_unregister(s, [], _p), do: CR.sync(s)

  def conn_register_unregister(s, [k | t], p) do
    :ok = CR.register(k, p, s)
    :ok = CR.unregister(k, s)
    conn_register_unregister(s, t, p)
  end

  def encode(_p, 0), do: :ok
  def encode(p, n), do: (_ = ConnReg.Transport.encode(p); encode(p, n - 1))

  def decode(_v, 0), do: :ok
  def decode(v, n), do: ({:ok, _} = ConnReg.Transport.decode(v); decode(v, n - 1))
end

passes =
  case System.argv() do
    [p | _] -> String.to_integer(p)
    _ -> 15
  end

n = Bench.n()
# 16-byte ids; the first byte is 0, so ConnectionRegistry stores them as they are.
ids = for i <- 1..n, do: <<i::32, :rand.bytes(12)::binary>>
refs = for _ <- 1..n, do: make_ref()
me = self()
segment = "/crx-bench-#{System.pid()}"
ConnReg.unlink(segment)

{:ok, _} = CR.start_link(name: :bench_cr, segment: segment, capacity: 4 * n, key_max: 64)
h = CR.handle(:bench_cr)
tab = :ets.new(:bench, [:set, :public, read_concurrency: true])
tab_plain = :ets.new(:bench_plain, [:set, :public])
{:ok, _} = Registry.start_link(keys: :unique, name: :bench_reg)

for k <- ids do
  :ets.insert(tab, {k, me})
  :ets.insert(tab_plain, {k, me})
  {:ok, _} = Registry.register(:bench_reg, k, me)
  :ok = CR.register(k, me, :bench_cr)
end

for r <- refs, do: :ok = CR.register(r, me, :bench_cr)
CR.sync(:bench_cr)
fresh = for i <- 1..n, do: <<i + n::32, :rand.bytes(12)::binary>>
chunks = Enum.chunk_every(ids, 64)
v = ConnReg.Transport.encode(me)

rows = [
  {"loop alone", fn -> Bench.loop(ids) end, n},
  {"ETS :ets.lookup (set, read_concurrency)", fn -> Bench.ets_lookup(tab, ids) end, n},
  {"ETS :ets.lookup (set, no read_concurrency)", fn -> Bench.ets_lookup(tab_plain, ids) end, n},
  {"Registry.lookup (unique)", fn -> Bench.reg_lookup(:bench_reg, ids) end, n},
  {"ConnReg.get (raw NIF, binary id)", fn -> Bench.cr_get(h, ids) end, n},
  {"ConnReg.get_bulk, 64 ids per call (per id)", fn -> Bench.cr_bulk(h, chunks) end, n},
  {"ConnectionRegistry.get_transport_pid, binary id", fn -> Bench.conn_get(:bench_cr, ids) end, n},
  {"ConnectionRegistry.get_transport_pid, reference id", fn -> Bench.conn_get(:bench_cr, refs) end, n},
  {"  of which: :persistent_term.get (the handle)",
   fn -> Bench.pt_get({CR, :bench_cr}, n) end, n},
  {"  of which: ConnectionRegistry.key(reference)", fn -> Bench.key(:bench_cr, refs) end, n},
  {"  of which: ConnReg.Transport.decode(value)", fn -> Bench.decode(v, n) end, n},
  {"ConnReg.Transport.encode(pid)", fn -> Bench.encode(me, n) end, n},
  {"ETS :ets.insert (existing key)", fn -> Bench.ets_insert(tab, ids, me) end, n},
  {"Registry.update_value (owner)", fn -> Bench.reg_update_value(:bench_reg, ids, me) end, n},
  {"ConnReg.update (raw)", fn -> Bench.cr_update(h, ids, 7) end, n},
  {"ConnReg.register (raw, id live)", fn -> Bench.cr_register(h, ids, v) end, n},
  {"ConnectionRegistry.register (id live, + owner's work)",
   fn -> Bench.conn_register(:bench_cr, ids, me) end, n},
  {"Registry.register + unregister (new key)",
   fn -> Bench.fresh(fn -> Bench.reg_register_unregister(:bench_reg, fresh) end) end, n},
  {"ConnReg.register + unregister (raw, new id)",
   fn -> Bench.fresh(fn -> Bench.cr_register_unregister(h, fresh, 7) end) end, n},
  {"ConnectionRegistry.register + unregister (new id, + owner's work)",
   fn -> Bench.fresh(fn -> Bench.conn_register_unregister(:bench_cr, fresh, me) end) end, n}
]

rows2 = [
  {"x2 ETS :ets.lookup (read_concurrency)", fn -> Bench.ets_lookup(tab, ids) end, n},
  {"x2 ETS :ets.lookup (no read_concurrency)", fn -> Bench.ets_lookup(tab_plain, ids) end, n},
  {"x2 Registry.lookup", fn -> Bench.reg_lookup(:bench_reg, ids) end, n},
  {"x2 ConnReg.get", fn -> Bench.cr_get(h, ids) end, n},
  {"x2 ConnectionRegistry.get_transport_pid, binary id",
   fn -> Bench.conn_get(:bench_cr, ids) end, n}
]

{cpu, _} = System.cmd("sh", ["-c", "lscpu | sed -n 's/^Model name: *//p'"])

IO.puts(
  "# #{String.trim(cpu)}; OTP #{System.otp_release()}, Elixir #{System.version()}, " <>
    "schedulers #{:erlang.system_info(:schedulers_online)}, #{n} ids, #{passes} passes, " <>
    "load #{File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")}"
)

for {name, fun, calls} <- rows do
  IO.puts(:io_lib.format("~-68s ~7.1f ns", [name, Bench.time(passes, calls, fun) * 1.0]))
end

for {name, fun, calls} <- rows2 do
  IO.puts(:io_lib.format("~-68s ~7.1f ns", [name, Bench.time2(passes, calls, fun) * 1.0]))
end

GenServer.stop(:bench_cr)
ConnReg.unlink(segment)
