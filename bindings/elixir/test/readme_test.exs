defmodule ConnReg.ReadmeTest do
  # The iex session in the top-level README.md, replayed: each "iex>" line
  # is evaluated in turn (aliases and variables carry over) and its result
  # compared with the lines the README shows, pids and references aside.
  # Not async: the session starts the default-named ConnectionRegistry.
  use ExUnit.Case, async: false
  import ConnRegTest.Helpers

  @readme Path.expand("../../../README.md", __DIR__)
  @marker "<!-- tested by bindings/elixir/test/readme_test.exs -->"

  test "the README's iex session" do
    steps = session(File.read!(@readme))
    assert length(steps) >= 10
    seg = segment("readme")

    Enum.reduce(steps, {[], Code.env_for_eval(file: "README.md")}, fn {expr, expected},
                                                                       {binding, env} ->
      code =
        expr
        |> String.replace("\"/gw-sessions\"", inspect(seg))
        |> String.replace("\"../../build/connreg\"", inspect(cli()))

      {value, binding, env} = Code.eval_quoted_with_env(Code.string_to_quoted!(code), binding, env)
      assert normalize(inspect(value)) == normalize(expected), "README: iex> #{expr}"
      {binding, env}
    end)

    GenServer.stop(ConnReg.ConnectionRegistry)
  end

  # [{expression, expected output}] from the block after the marker.
  defp session(readme) do
    [_, after_marker] = String.split(readme, @marker, parts: 2)
    [_, block, _] = String.split(after_marker, "```", parts: 3)

    block
    |> String.split("\n", trim: true)
    |> Enum.drop_while(&(not String.starts_with?(&1, "iex> ")))
    |> Enum.chunk_while(
      nil,
      fn
        "iex> " <> expr, nil -> {:cont, {expr, []}}
        "iex> " <> expr, {prev, out} -> {:cont, {prev, Enum.join(Enum.reverse(out), "\n")}, {expr, []}}
        line, {prev, out} -> {:cont, {prev, [line | out]}}
      end,
      fn {prev, out} -> {:cont, {prev, Enum.join(Enum.reverse(out), "\n")}, nil} end
    )
  end

  # Pids, references and transports (which carry the boot's random tag) differ per run.
  defp normalize(text) do
    text
    |> String.replace(~r/#PID<\d+\.\d+\.\d+>/, "#PID<>")
    |> String.replace(~r/#Reference<[\d.]+>/, "#Reference<>")
    |> String.replace(~r/\d{12,}/, "N")
  end
end
