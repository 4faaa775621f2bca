Feature: Incident lifecycle
  As the hotline and the network team of a managed-services company
  We want every incident on a customer's site to go from logging to closure by clear rules
  So that service is restored within the GTR and the history can be trusted by the account's ROC

  The day is Monday 3 March 2025, Paris time. The customer "resto-chain" is a restaurant chain
  whose sites are linked by routers over carrier links; its restaurant 42 router is "router-resto-042".

  Scenario: A restaurant's router is down, from the phone call to closure
    When "hotline N1" logs an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down, no payment terminal works", impact 1, urgency 2
    Then the incident is new
    And its priority is P2 (high)
    When "hotline N1" acknowledges the incident at 09:07
    Then the incident is acknowledged
    When "hotline N1" assigns the incident to "N2 network" at 09:10
    Then the incident is assigned to "N2 network"
    When "N2 technician" puts the incident on hold awaiting the supplier at 09:40 with the note "carrier ticket 881 opened, line test running"
    Then the incident is on hold awaiting the supplier
    When "N2 technician" resumes the incident at 10:55
    Then the incident is assigned to "N2 network"
    When "N2 technician" records that service is restored at 11:05
    Then the incident is restored
    And the GTR stop point is 11:05
    When "N2 technician" resolves the incident with code "fixed" at 11:30
    Then the incident is resolved with code "fixed"
    And the GTR stop point is 11:05
    When "hotline N1" closes the incident at 14:00
    Then the incident is closed
    And its history reads "Logged, Acknowledged, Assigned, PutOnHold, Resumed, ServiceRestored, Resolved, Closed"

  Scenario: Resolving an incident whose service was not yet restored restores it at the same time
    Given "supervision" logged an incident by monitoring at 09:05 for account "resto-chain" on CI "router-resto-042": "Router unreachable", impact 2, urgency 2
    And "hotline N1" assigned the incident to "N2 network" at 09:08
    When "N2 technician" resolves the incident with code "fixed" at 09:50
    Then the incident is resolved with code "fixed"
    And the GTR stop point is 09:50
    And its history reads "Logged, Assigned, ServiceRestored, Resolved"

  Scenario: Closing an incident that was never resolved is refused
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "hotline N1" acknowledged the incident at 09:07
    And "hotline N1" assigned the incident to "N2 network" at 09:10
    When "hotline N1" tries to close the incident at 09:30
    Then the command is refused because "only a resolved incident can be closed"
    And nothing more is stored
    And the incident is assigned to "N2 network"

  Scenario: Closing an incident whose service is only restored is refused
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "N2 technician" recorded that service is restored at 09:45
    When "hotline N1" tries to close the incident at 10:00
    Then the command is refused because "service is restored but the incident must be resolved first"
    And nothing more is stored
    And the incident is restored

  Scenario: A resolved incident that fails again is reopened and service is no longer restored
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "hotline N1" assigned the incident to "N2 network" at 09:10
    And "N2 technician" recorded that service is restored at 09:45
    And "N2 technician" resolved the incident with code "fixed" at 10:00
    When "hotline N1" reopens the incident at 10:20 because "the restaurant manager calls back: the router is down again"
    Then the incident is assigned to "N2 network"
    And service is no longer restored
    When "N2 technician" records that service is restored at 10:50
    Then the GTR stop point is 10:50

  Scenario: A closed incident cannot be reopened
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "N2 technician" resolved the incident with code "fixed" at 10:00
    And "hotline N1" closed the incident at 10:30
    When "hotline N1" tries to reopen the incident at 11:00 because "down again"
    Then the command is refused because "a closed incident cannot be reopened, log a new one"
    And nothing more is stored
    And the incident is closed

  Scenario: A duplicate logged by mistake is cancelled
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "hotline N1" logged an incident by email at 09:12 for account "resto-chain" on CI "router-resto-042": "Router at restaurant 42 not responding", impact 1, urgency 2
    When "hotline N1" cancels the incident at 09:15 because "duplicate of the 09:05 call"
    Then the incident is cancelled
    And the incident logged at 09:05 is still new
    When "hotline N1" tries to acknowledge the incident at 09:16
    Then the command is refused because "it is cancelled"
    And nothing more is stored

  Scenario: An incident whose service was restored cannot be cancelled
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "N2 technician" recorded that service is restored at 09:45
    When "hotline N1" tries to cancel the incident at 09:50 because "duplicate"
    Then the command is refused because "service was restored, resolve it instead"
    And nothing more is stored

  Scenario: A step dated before the last recorded one is refused
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "hotline N1" acknowledged the incident at 09:07
    When "hotline N1" tries to assign the incident to "N2 network" at 09:06
    Then the command is refused because "that is before its last recorded step"
    And nothing more is stored

  Scenario Outline: Priority follows the impact and the urgency
    When "supervision" logs an incident by monitoring at 09:05 for account "resto-chain" on CI "router-resto-042": "Link alarm", impact <impact>, urgency <urgency>
    Then its priority is P<priority> (<name>)

    Examples:
      | impact | urgency | priority | name     |
      | 1      | 1       | 1        | critical |
      | 1      | 2       | 2        | high     |
      | 1      | 3       | 3        | medium   |
      | 2      | 1       | 2        | high     |
      | 2      | 2       | 3        | medium   |
      | 2      | 3       | 4        | low      |
      | 3      | 1       | 3        | medium   |
      | 3      | 2       | 4        | low      |
      | 3      | 3       | 4        | low      |

  Scenario: A carrier link outage takes several restaurants down: their incidents are gathered under one parent
    Given "supervision" logged an incident by monitoring at 09:02 for account "resto-chain" on CI "carrier-link-orange-paca": "Orange PACA collect link down", impact 1, urgency 1
    And "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 2, urgency 2
    And "hotline N1" logged an incident by phone at 09:07 for account "resto-chain" on CI "router-resto-057": "Restaurant 57 cannot take card payments", impact 2, urgency 1
    When "N2 network" attaches the incident logged at 09:05 to the incident logged at 09:02 at 09:15
    And "N2 network" attaches the incident logged at 09:07 to the incident logged at 09:02 at 09:16
    Then the incident logged at 09:02 is the parent of the incidents logged at 09:05 and 09:07
    And the history of the incident logged at 09:02 reads "Logged, ChildAttached, ChildAttached"

  Scenario: A restaurant of another customer cannot be attached to the carrier outage of the chain
    Given "supervision" logged an incident by monitoring at 09:02 for account "resto-chain" on CI "carrier-link-orange-paca": "Orange PACA collect link down", impact 1, urgency 1
    And "hotline N1" logged an incident by phone at 09:10 for account "bakery-chain" on CI "router-bakery-003": "Bakery 3 offline", impact 2, urgency 2
    When "N2 network" tries to attach the incident logged at 09:10 to the incident logged at 09:02 at 09:15
    Then the command is refused because "that one is on account resto-chain"
    And nothing more is stored

  Scenario: A restaurant whose incident is already attached cannot be attached to a second outage
    Given "supervision" logged an incident by monitoring at 09:02 for account "resto-chain" on CI "carrier-link-orange-paca": "Orange PACA collect link down", impact 1, urgency 1
    And "supervision" logged an incident by monitoring at 09:03 for account "resto-chain" on CI "carrier-link-sfr-paca": "SFR PACA backup link down", impact 1, urgency 1
    And "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 2, urgency 2
    And "N2 network" attached the incident logged at 09:05 to the incident logged at 09:02 at 09:15
    When "N2 network" tries to attach the incident logged at 09:05 to the incident logged at 09:03 at 09:20
    Then the command is refused because "it is already a child of incident"
    And nothing more is stored

  Scenario: The router fails again after the reopen period: a new incident is logged, related to the first
    Given the account "resto-chain" is registered with the ROC "Anne Martin"
    And the account "resto-chain" lets its incidents be reopened up to 3 days after resolution
    And "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "N2 technician" resolved the incident with code "fixed" at 10:00
    When "hotline N1" tries to reopen the incident on Friday at 09:00 because "the router is down again"
    Then the command is refused because "more than 3 days ago"
    And the command is refused because "log a new incident related to this one"
    And nothing more is stored
    When "hotline N1" logs by phone on Friday at 09:05 a new incident following up the incident logged at 09:05: "Restaurant 42 router down again"
    Then the incident is new
    And it follows up the incident logged at 09:05
    And the incident logged at 09:05 is still resolved

  Scenario: Within the reopen period the same incident is reopened
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 1, urgency 2
    And "hotline N1" assigned the incident to "N2 network" at 09:10
    And "N2 technician" resolved the incident with code "fixed" at 10:00
    When "hotline N1" reopens the incident on Friday at 09:00 because "the router is down again"
    Then the incident is assigned to "N2 network"

  Scenario: The hotline escalates a link fault to the network team
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 2, urgency 2
    And "hotline N1" assigned the incident to "N1 hotline" at 09:06
    When "hotline N1" escalates the incident to "N2 network" at 09:20 because "the router answers but the carrier link is down"
    Then the incident is assigned to "N2 network"
    And nobody in the group has taken it yet
    And its history reads "Logged, Assigned, FunctionallyEscalated"

  Scenario: An escalation to a team of the same tier is refused
    Given "hotline N1" logged an incident by phone at 09:05 for account "resto-chain" on CI "router-resto-042": "Restaurant 42 router down", impact 2, urgency 2
    And "hotline N1" assigned the incident to "N2 systems" at 09:06
    When "N2 technician" tries to escalate the incident to "N2 network" at 09:20 because "it looks like the link"
    Then the command is refused because "from N2 systems (tier 2) to N2 network (tier 2): a functional escalation goes to a higher tier"
    And nothing more is stored
    And the incident is assigned to "N2 systems"

  Scenario: A major incident is declared when the carrier outage hits many restaurants
    Given "supervision" logged an incident by monitoring at 09:02 for account "resto-chain" on CI "carrier-link-orange-paca": "Orange PACA collect link down", impact 1, urgency 1
    When "N2 network" declares a major incident at 09:10 because "40 restaurants cannot take card payments"
    Then the incident is a major incident
    When "N2 network" tries to declare a major incident at 09:12 because "still down"
    Then the command is refused because "it already is a major incident"
    And nothing more is stored

  Scenario: The restaurant chain's own priority matrix makes a card payment outage critical
    Given the account "resto-chain" is registered with the ROC "Anne Martin"
    And the account "resto-chain" rates incidents with this priority matrix:
      | impact | urgency 1 | urgency 2 | urgency 3 |
      | 1      | 1         | 1         | 2         |
      | 2      | 1         | 2         | 3         |
      | 3      | 2         | 3         | 4         |
    When "hotline N1" logs an incident by phone at 09:05 for account "resto-chain" on CI "tpe-resto-042-01": "Card payments refused at restaurant 42", impact 2, urgency 1
    Then its priority is P1 (critical)
    When "hotline N1" logs an incident by phone at 09:06 for account "bakery-chain" on CI "tpe-bakery-003-01": "Card payments refused at bakery 3", impact 2, urgency 1
    Then its priority is P2 (high)
