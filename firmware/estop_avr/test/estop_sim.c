/*
 * The firmware logic (estop_app) on the host, driven by a simulated millisecond clock.
 * It runs the same steps as the AVR main loop, with commands on stdin in place of the
 * UART and the input pins, so tests can compare it with the Python board rules.
 *
 * Usage: estop_sim [--watchdog-ms N] [--status-period-ms N] [--debounce-ms N]
 *
 * Commands, one per line (empty lines and lines starting with # are skipped):
 *   at MS        advance the clock to MS (absolute, not before the current instant),
 *                running one main-loop pass per millisecond: sample inputs, then poll
 *   rx HEX       bytes received now (any framing, garbage included)
 *   button 0|1   raw level of the button input from now on (1 pressed), sampled now
 *   fault 0|1    raw level of the fault input from now on (1 fault), sampled now
 *   status       print the board's current STATUS payload without sending it
 * Output, one per line:
 *   tx MS FRAME     a STATUS frame the board sent at MS, in hex
 *   state MS PAYLOAD  the 13-byte STATUS payload, in hex, for a `status` command
 * Errors go to stderr with the line number, and the exit status is 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "estop_app.h"

#define MAX_LINE 8192
#define MAX_RX (MAX_LINE / 2)

/* The AVR build's debounce times in ms (main_avr.c). */
#define DEFAULT_BUTTON_PRESS_MS 2
#define DEFAULT_BUTTON_RELEASE_MS 20
#define DEFAULT_FAULT_RAISE_MS 2
#define DEFAULT_FAULT_CLEAR_MS 50

struct simulator {
    struct estop_app app;
    uint32_t now_ms;
    int button_level;
    int fault_level;
};

static void fail(unsigned line_number, const char *message, const char *value)
{
    if (line_number > 0) {
        fprintf(stderr, "estop_sim: line %u: %s: '%s'\n", line_number, message, value);
    } else {
        fprintf(stderr, "estop_sim: %s: '%s'\n", message, value);
    }
    exit(2);
}

static unsigned long parse_number(const char *text, unsigned long max, unsigned line_number)
{
    char *end;
    unsigned long value;

    if (text == NULL) {
        fail(line_number, "missing number", "");
    }
    errno = 0;
    value = strtoul(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || value > max) {
        fail(line_number, "invalid number (expected a decimal integer in range)", text);
    }
    return value;
}

static void print_hex(const uint8_t *data, size_t length)
{
    size_t i;

    for (i = 0; i < length; ++i) {
        printf("%02x", data[i]);
    }
}

/* One pass of the main loop's output half: watchdog check and STATUS when due. */
static void poll(struct simulator *simulator)
{
    uint8_t frame[ESTOP_STATUS_FRAME_SIZE];
    size_t size = estop_app_poll(&simulator->app, simulator->now_ms, frame, sizeof(frame));

    if (size > 0) {
        printf("tx %lu ", (unsigned long)simulator->now_ms);
        print_hex(frame, size);
        printf("\n");
    }
}

static void sample(struct simulator *simulator)
{
    estop_app_sample_inputs(&simulator->app, simulator->button_level, simulator->fault_level,
                            simulator->now_ms);
}

static void advance(struct simulator *simulator, uint32_t target_ms, unsigned line_number,
                    const char *text)
{
    if (target_ms < simulator->now_ms) {
        fail(line_number, "time goes backwards", text);
    }
    while (simulator->now_ms < target_ms) {
        ++simulator->now_ms;
        sample(simulator);
        poll(simulator);
    }
}

static void receive(struct simulator *simulator, const char *text, unsigned line_number)
{
    static uint8_t data[MAX_RX];
    size_t length;
    size_t i;

    if (text == NULL) {
        fail(line_number, "missing hex bytes", "");
    }
    length = strlen(text);
    if (length % 2 != 0 || length / 2 > sizeof(data)) {
        fail(line_number, "invalid hex bytes", text);
    }
    for (i = 0; i < length / 2; ++i) {
        unsigned value;

        if (sscanf(&text[2 * i], "%2x", &value) != 1) {
            fail(line_number, "invalid hex bytes", text);
        }
        data[i] = (uint8_t)value;
    }
    estop_app_receive(&simulator->app, data, length / 2, simulator->now_ms);
    poll(simulator);
}

static void print_state(const struct simulator *simulator)
{
    struct estop_status status;
    uint8_t payload[ESTOP_STATUS_PAYLOAD_SIZE];

    estop_board_status(&simulator->app.board, &status);
    estop_encode_status_payload(payload, &status);
    printf("state %lu ", (unsigned long)simulator->now_ms);
    print_hex(payload, sizeof(payload));
    printf("\n");
}

static void run_command(struct simulator *simulator, char *line, unsigned line_number)
{
    char *command = strtok(line, " \t");
    char *argument = strtok(NULL, " \t");

    if (command == NULL || command[0] == '#') {
        return;
    }
    if (strcmp(command, "at") == 0) {
        advance(simulator, (uint32_t)parse_number(argument, 0xFFFFFFFFul, line_number), line_number,
                argument);
    } else if (strcmp(command, "rx") == 0) {
        receive(simulator, argument, line_number);
    } else if (strcmp(command, "button") == 0) {
        simulator->button_level = (int)parse_number(argument, 1, line_number);
        sample(simulator);
        poll(simulator);
    } else if (strcmp(command, "fault") == 0) {
        simulator->fault_level = (int)parse_number(argument, 1, line_number);
        sample(simulator);
        poll(simulator);
    } else if (strcmp(command, "status") == 0) {
        print_state(simulator);
    } else {
        fail(line_number, "unknown command (expected at, rx, button, fault or status)", command);
    }
}

int main(int argc, char **argv)
{
    static struct simulator simulator;
    static char line[MAX_LINE];
    struct estop_app_config config = {
        {100, 20, 1, 0},
        DEFAULT_BUTTON_PRESS_MS,
        DEFAULT_BUTTON_RELEASE_MS,
        DEFAULT_FAULT_RAISE_MS,
        DEFAULT_FAULT_CLEAR_MS,
    };
    unsigned line_number = 0;
    int i;

    for (i = 1; i < argc; ++i) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(argv[i], "--watchdog-ms") == 0) {
            config.board.watchdog_ms = (uint16_t)parse_number(value, 0xFFFF, 0);
        } else if (strcmp(argv[i], "--status-period-ms") == 0) {
            config.board.status_period_ms = (uint16_t)parse_number(value, 0xFFFF, 0);
        } else if (strcmp(argv[i], "--debounce-ms") == 0) {
            uint16_t debounce_ms = (uint16_t)parse_number(value, 0xFFFF, 0);

            config.button_press_ms = debounce_ms;
            config.button_release_ms = debounce_ms;
            config.fault_raise_ms = debounce_ms;
            config.fault_clear_ms = debounce_ms;
        } else {
            fail(0, "unknown option (expected --watchdog-ms, --status-period-ms or --debounce-ms)",
                 argv[i]);
        }
        ++i;
    }
    if (!estop_board_config_valid(&config.board)) {
        fprintf(stderr,
                "estop_sim: invalid board configuration: watchdog %u ms (5..60000), "
                "STATUS period %u ms (1..10000)\n",
                config.board.watchdog_ms, config.board.status_period_ms);
        return 2;
    }

    estop_app_init(&simulator.app, &config, 0, 0, 0);
    poll(&simulator);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        ++line_number;
        if (strchr(line, '\n') == NULL && !feof(stdin)) {
            fail(line_number, "line too long", "");
        }
        line[strcspn(line, "\r\n")] = '\0';
        run_command(&simulator, line, line_number);
    }
    return 0;
}
