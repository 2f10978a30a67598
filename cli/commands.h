// Every `probelab` subcommand: `int cmd_NAME(int argc, char **argv)`, argv[0] being the subcommand
// name. Each parses its options, calls one library function, prints, and returns the exit status.
// To add one: write cli/cmd_NAME.c, declare it here, and add a row to the table in probelab.c.
#ifndef PL_CLI_COMMANDS_H
#define PL_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_label(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_precot(int argc, char **argv);
int cmd_lens(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_view(int argc, char **argv);

#endif
