defmodule ConnReg.NifBuildTest do
  # How priv/connreg_nif.so is linked (the Makefile, run by the Mix
  # compiler task in mix.exs).
  use ExUnit.Case, async: true
  import ConnRegTest.Helpers

  @project Path.expand("..", __DIR__)

  test "the loaded NIF leaves enif_* to the VM, keeps connreg_* inside, needs no libconnreg.so" do
    so = Path.join(:code.priv_dir(:connreg), "connreg_nif.so")
    {undefined, 0} = System.cmd("nm", ["-D", "--undefined-only", so])
    assert undefined =~ ~r/\benif_get_resource\b/
    assert undefined =~ ~r/\benif_make_atom\b/
    {defined, 0} = System.cmd("nm", ["-D", "--defined-only", so])
    assert defined =~ ~r/\bnif_init\b/
    refute defined =~ "connreg_"
    {dynamic, 0} = System.cmd("readelf", ["-d", so])
    assert dynamic =~ "libck.so"
    refute dynamic =~ "libconnreg"
  end

  test "an inherited -Wl,--no-undefined or -z defs is dropped from the NIF's link" do
    flags = "-Wl,--no-undefined -Wl,-z,defs -Wl,-z,relro"
    common = ["-n", "-B", "--no-print-directory", "-C", @project, "ERTS_INCLUDE_DIR=/nonexistent"]
    env = [{"CONNREG_BUILD_DIR", build_dir()}]

    # From the environment and from the command line; -n: nothing is built.
    for {args, env} <- [
          {common, [{"LDFLAGS", flags} | env]},
          {common ++ ["LDFLAGS=" <> flags], env}
        ] do
      {out, 0} = System.cmd("make", args, env: env, stderr_to_stdout: true)
      [link] = out |> String.split("\n") |> Enum.filter(&(&1 =~ "-o priv/connreg_nif.so"))
      assert link =~ "-shared"
      assert link =~ "-Wl,-z,relro"
      refute link =~ "--no-undefined"
      refute link =~ "-z,defs"
      assert link =~ "libconnreg.a"
    end
  end
end
