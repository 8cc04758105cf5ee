/*
 * Hardware layer for an ATmega328P at 16 MHz (Arduino Uno class); see hal.h.
 *
 * Pins (Arduino name, port pin):
 *   D0 / PD0  UART RX, D1 / PD1 UART TX (115200 baud, 8N1)
 *   D7 / PD7  relay driver output, high energises the relay (contacts closed)
 *   D2 / PD2  e-stop button, normally-closed contact to GND, internal pull-up.
 *             High means pressed or a broken wire.
 *   D3 / PD3  fault input, driven high by the monitoring circuit when healthy, with
 *             an external pull-down. Low means fault or a broken wire.
 *   D13 / PB5 LED, on while the relay is closed
 * After any reset every pin is a high-impedance input, so the relay driver needs a
 * pull-down on its input to keep the relay de-energised until hal_init() runs.
 */
#ifndef F_CPU
#error "F_CPU must be defined, for example -DF_CPU=16000000UL"
#endif

#include "hal.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <util/atomic.h>

/* 115200 baud from 16 MHz is 2.1 % fast with U2X (UBRR 16), the closest divisor.
 * A tolerance of 3 % lets util/setbaud.h accept it. */
#define BAUD 115200UL
#define BAUD_TOL 3
#include <util/setbaud.h>

#define RELAY_DDR DDRD
#define RELAY_PORT PORTD
#define RELAY_BIT PD7
#define BUTTON_PORT PORTD
#define BUTTON_PIN PIND
#define BUTTON_BIT PD2
#define FAULT_PORT PORTD
#define FAULT_PIN PIND
#define FAULT_BIT PD3
#define LED_DDR DDRB
#define LED_PORT PORTB
#define LED_BIT PB5

/* Ring sizes are powers of two so an index wraps with a mask. One slot stays empty to
 * tell a full ring from an empty one. */
#define RX_SIZE 64u
#define TX_SIZE 64u
#define RX_MASK (RX_SIZE - 1u)
#define TX_MASK (TX_SIZE - 1u)

/* Timer0 in CTC mode: 16 MHz / 64 / 250 = 1 kHz. */
#define TIMER0_PRESCALE_BITS ((1 << CS01) | (1 << CS00))
#define TIMER0_TOP 249u

static volatile uint32_t milliseconds;

/* The receive ISR writes rx_head and the main loop writes rx_tail; the transmit side is
 * the other way round. Each index is one byte, so every access is atomic on the AVR. */
static volatile uint8_t rx_buffer[RX_SIZE];
static volatile uint8_t rx_head;
static volatile uint8_t rx_tail;
static volatile uint8_t tx_buffer[TX_SIZE];
static volatile uint8_t tx_head;
static volatile uint8_t tx_tail;

/* Counters for a debugger; the protocol has no field for them. Lost or damaged bytes
 * also show up as bad frames in STATUS, because the frame's CRC then fails. */
volatile uint16_t hal_rx_overflows;
volatile uint16_t hal_rx_errors;

/*
 * A watchdog reset leaves the watchdog enabled with its shortest period, so it is turned
 * off before the C runtime initialises memory, as the avr-libc manual recommends.
 */
void hal_early_watchdog_off(void) __attribute__((naked, used, section(".init3")));
void hal_early_watchdog_off(void)
{
    MCUSR = 0;
    wdt_disable();
}

void hal_init(void)
{
    /* Relay first: output low, de-energised. */
    RELAY_PORT &= (uint8_t)~(1u << RELAY_BIT);
    RELAY_DDR |= (uint8_t)(1u << RELAY_BIT);
    LED_PORT &= (uint8_t)~(1u << LED_BIT);
    LED_DDR |= (uint8_t)(1u << LED_BIT);

    /* Inputs: pull-up on the button, none on the fault line (its pull-down is external). */
    BUTTON_PORT |= (uint8_t)(1u << BUTTON_BIT);
    FAULT_PORT &= (uint8_t)~(1u << FAULT_BIT);

    UBRR0H = UBRRH_VALUE;
    UBRR0L = UBRRL_VALUE;
#if USE_2X
    UCSR0A = (uint8_t)(1u << U2X0);
#else
    UCSR0A = 0;
#endif
    UCSR0C = (uint8_t)((1u << UCSZ01) | (1u << UCSZ00));
    UCSR0B = (uint8_t)((1u << RXEN0) | (1u << TXEN0) | (1u << RXCIE0));

    TCCR0A = (uint8_t)(1u << WGM01);
    OCR0A = TIMER0_TOP;
    TIMSK0 = (uint8_t)(1u << OCIE0A);
    TCCR0B = TIMER0_PRESCALE_BITS;

    sei();
}

ISR(TIMER0_COMPA_vect)
{
    ++milliseconds;
}

uint32_t hal_millis(void)
{
    uint32_t now;

    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        now = milliseconds;
    }
    return now;
}

ISR(USART_RX_vect)
{
    /* UCSR0A must be read before UDR0, which clears the error flags. */
    uint8_t status = UCSR0A;
    uint8_t byte = UDR0;
    uint8_t next = (uint8_t)((rx_head + 1u) & RX_MASK);

    if (status & (uint8_t)((1u << FE0) | (1u << UPE0))) {
        /* A byte with a framing or parity error is dropped; the frame's CRC fails. */
        ++hal_rx_errors;
        return;
    }
    if (status & (uint8_t)(1u << DOR0)) {
        /* An earlier byte was lost, but this one is intact. */
        ++hal_rx_errors;
    }
    if (next == rx_tail) {
        ++hal_rx_overflows;
        return;
    }
    rx_buffer[rx_head] = byte;
    rx_head = next;
}

size_t hal_uart_read(uint8_t *out, size_t capacity)
{
    size_t count = 0;
    uint8_t tail = rx_tail;

    while (count < capacity && tail != rx_head) {
        out[count++] = rx_buffer[tail];
        tail = (uint8_t)((tail + 1u) & RX_MASK);
    }
    rx_tail = tail;
    return count;
}

ISR(USART_UDRE_vect)
{
    if (tx_tail == tx_head) {
        UCSR0B &= (uint8_t)~(1u << UDRIE0);
        return;
    }
    UDR0 = tx_buffer[tx_tail];
    tx_tail = (uint8_t)((tx_tail + 1u) & TX_MASK);
}

size_t hal_uart_tx_free(void)
{
    uint8_t used = (uint8_t)((uint8_t)(tx_head - tx_tail) & TX_MASK);

    return (size_t)(TX_SIZE - 1u - used);
}

void hal_uart_write(const uint8_t *data, size_t length)
{
    size_t i;
    uint8_t head = tx_head;

    for (i = 0; i < length; ++i) {
        uint8_t next = (uint8_t)((head + 1u) & TX_MASK);

        if (next == tx_tail) {
            break;
        }
        tx_buffer[head] = data[i];
        head = next;
    }
    tx_head = head;
    /* Setting UDRIE0 is a read-modify-write of UCSR0B, which the UDRE ISR also changes. */
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE)
    {
        UCSR0B |= (uint8_t)(1u << UDRIE0);
    }
}

void hal_relay_set_open(uint8_t open)
{
    if (open) {
        RELAY_PORT &= (uint8_t)~(1u << RELAY_BIT);
        LED_PORT &= (uint8_t)~(1u << LED_BIT);
    } else {
        RELAY_PORT |= (uint8_t)(1u << RELAY_BIT);
        LED_PORT |= (uint8_t)(1u << LED_BIT);
    }
}

int hal_button_raw_pressed(void)
{
    return (BUTTON_PIN & (1u << BUTTON_BIT)) ? 1 : 0;
}

int hal_fault_raw(void)
{
    return (FAULT_PIN & (1u << FAULT_BIT)) ? 0 : 1;
}

void hal_watchdog_start(void)
{
    /* 60 ms nominal; the watchdog's own 128 kHz oscillator makes the real period vary
     * with supply voltage and temperature (see the ATmega328P datasheet). */
    wdt_enable(WDTO_60MS);
}

void hal_watchdog_feed(void)
{
    wdt_reset();
}
